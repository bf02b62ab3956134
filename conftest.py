"""Root pytest configuration (applies to tests/, book/, solutions/ and labs/).

nbval waits at most 5 seconds for a cell's output messages after the cell has finished; on a busy
2-core machine running two notebooks at once (``-n 2``) a progress bar's last messages can take
longer, and nbval then fails a cell that ran correctly. Give it a minute.
"""

import os

import nbval.plugin as _nbval

# Every notebook kernel and worker inherits this: BLAS thread pools on one thread each, so that
# two notebooks tested side by side (-n 2) do not fight over the two cores (see utils.seeding).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

_original_init = _nbval.IPyNbCell.__init__


def _patient_init(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    self.output_timeout = 60


_nbval.IPyNbCell.__init__ = _patient_init
