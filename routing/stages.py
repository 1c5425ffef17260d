"""The fitted pieces of the routing model: a temperature-scaled linear SVM for the target and binary stages.

Their prediction paths skip scikit-learn's per-call input checks, which cost about a millisecond per single
text; the worker classifies one ticket at a time.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

# Chosen on the seed by group 5-fold (docs/routing.md): complaint and urgency LR, target SVM.
COMPLAINT_C, TARGET_C, URGENT_C = 50.0, 1.0, 10.0
_TEMPERATURES = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 14.0, 20.0)


def softmax(values: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by each row's maximum so large scores cannot overflow."""
    shifted = np.exp(values - values.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class SoftmaxSVC:
    """Linear SVM (40x faster to fit than multinomial LR here) with softmax scores at a fitted temperature.

    The scores rank candidates and measure the margin; the confidence shown to users is calibrated separately.
    """

    def __init__(self, c: float = TARGET_C, temperature: float = 4.0, seed: int = 0) -> None:
        self.svm = LinearSVC(C=c, random_state=seed)
        self.temperature = temperature

    @property
    def classes_(self) -> np.ndarray:
        """The class labels, in the column order of decision() and predict_proba()."""
        return self.svm.classes_

    def fit(self, matrix: Any, labels: list[str]) -> SoftmaxSVC:
        """Fit the SVM and keep its weights in float32."""
        self.svm.fit(matrix, labels)
        # float32 weights halve the model file and load time; scores change by < 1e-6.
        self.svm.coef_ = self.svm.coef_.astype(np.float32)
        return self

    def decision(self, matrix: Any) -> np.ndarray:
        """SVM scores per class, computed directly in float32 (sklearn's checks cost ~1 ms per single text)."""
        values = np.asarray(matrix.astype(np.float32) @ self.svm.coef_.T) + self.svm.intercept_
        if values.shape[1] == 1:
            values = np.column_stack([-values[:, 0], values[:, 0]])
        return values

    def predict_proba(self, matrix: Any) -> np.ndarray:
        """Softmax of the scores at the fitted temperature (ranks and margins, not the shown confidence)."""
        return softmax(self.decision(matrix) * self.temperature)


def fit_temperature(decisions: np.ndarray, truth_index: np.ndarray) -> float:
    """Temperature minimising the log loss of out-of-fold decision values."""
    best, best_loss = 1.0, np.inf
    for temperature in _TEMPERATURES:
        probabilities = softmax(decisions * temperature)
        loss = -np.mean(np.log(probabilities[np.arange(len(truth_index)), truth_index] + 1e-12))
        if loss < best_loss:
            best, best_loss = temperature, loss
    return best


class ConstantStage:
    """Stand-in for a binary stage when the training data has one class only (e.g. complaints-only corpora)."""

    def __init__(self, positive: bool) -> None:
        self.positive = positive

    def predict_proba(self, matrix: Any) -> np.ndarray:
        """The same answer for every row, in scikit-learn's two-column layout."""
        column = np.full(matrix.shape[0], 1.0 if self.positive else 0.0)
        return np.column_stack([1.0 - column, column])


BinaryStage: TypeAlias = LogisticRegression | ConstantStage


def binary_stage(matrix: Any, labels: np.ndarray, c: float, seed: int) -> BinaryStage:
    """A balanced logistic regression, or a constant when the labels hold one class only."""
    if labels.all() or not labels.any():
        return ConstantStage(bool(labels.all()))
    return LogisticRegression(C=c, class_weight="balanced", solver="liblinear", random_state=seed).fit(matrix, labels)


def positive_probability(stage: BinaryStage, matrix: Any) -> np.ndarray:
    """P(positive class) of a binary stage, without sklearn's per-call input checks."""
    if isinstance(stage, ConstantStage):
        return stage.predict_proba(matrix)[:, 1]
    return expit(np.asarray(matrix @ stage.coef_[0]).ravel() + stage.intercept_[0])
