"""utils.plotting: arguments are checked before anything is drawn."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from utils.plotting import plot_population_rates  # noqa: E402


def test_population_rates_needs_both_populations():
    rates = np.ones((5, 2, 4))
    ax = plot_population_rates(rates, n_exc=3, dt=10.0)
    assert len(ax.lines) == 2
    plt.close("all")
    for n_exc in (-1, 0, 4, 5):  # was: drawn from a wrong split (-1: all but one unit as E)
        with pytest.raises(ValueError, match="n_exc must be"):
            plot_population_rates(rates, n_exc=n_exc, dt=10.0)


def test_plot_initial_weights_draws_a_labelled_matrix():
    import matplotlib
    matplotlib.use("Agg")
    from utils.plotting import plot_initial_weights
    ax = plot_initial_weights(0.75, 0.3, n_units=20)
    assert "E fraction 0.75" in ax.get_title() and "sparsity 0.30" in ax.get_title()
