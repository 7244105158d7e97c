"""Metrics, named as Keras names them."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def accuracy(y_true: NDArray[Any], y_pred: NDArray[Any]) -> float:
    """Keras' "accuracy": thresholded at 0.5 for one output unit, argmax otherwise.

    y_true, y_pred: (batch, units).
    """
    if y_pred.shape[-1] == 1:
        hits = (y_pred > 0.5) == (y_true > 0.5)
    else:
        hits = np.argmax(y_pred, axis=-1) == np.argmax(y_true, axis=-1)
    # np.mean of booleans, exactly: a count over the size (np.mean's dispatch costs more).
    return int(np.count_nonzero(hits)) / int(hits.size)


METRIC_FUNCTIONS = {"accuracy": accuracy}


def compute(names: tuple[str, ...], y_true: NDArray[Any], y_pred: NDArray[Any]) -> dict[str, float]:
    return {name: METRIC_FUNCTIONS[name](y_true, y_pred) for name in names}
