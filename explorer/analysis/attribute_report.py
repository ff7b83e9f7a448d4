"""Attribute explanations ready to show: one match, one prototype, a dose-response curve."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from explorer.analysis.attributes import (
    GlobalAttributes,
    LocalAttributes,
    generalises,
    local_attributes,
    local_disagrees,
    match_sentence,
    most_common_top,
    prototype_sentence,
    relative,
    sorted_values,
    uncertainty_sentence,
    welch_by_modification,
)
from explorer.analysis.modifications import ATTRIBUTES, default_dose_strengths, dose_response
from explorer.models.base import PrototypeModel


@dataclass(frozen=True)
class MatchAttributes:
    """Why one prototype matches one image, next to why it matches in general.

    Attributes:
        prototype: its index.
        names: modification names ``M``.
        local: ``[M]`` local φ on this image (reference reading).
        local_relative: ``[M]`` relative reading: percentile of φ's share among this image's
            prototypes.
        global_phi: ``[M]`` the prototype's global Φ (``None`` when not computed).
        global_relative: ``[M]`` relative reading of Φ (percentile of its share among the model's
            prototypes).
        global_split: the split ``global_phi`` was computed on.
        sentence: the match in words (names its reading).
        values: the local φ sorted, four decimals.
        disagrees: the local ranking disagrees with the global one (Spearman ρ < 0 over the
            applicable modifications): a hint that this match may rest on something else than the
            prototype usually does.
        not_applicable: modifications that cannot apply (grey images or grey-input models).
        global_uncertainty: the global explanation's uncertainty in words (its bootstrap
            intervals, or that it has none); empty without a stored global explanation.
    """

    prototype: int
    names: tuple[str, ...]
    local: np.ndarray
    local_relative: np.ndarray
    global_phi: np.ndarray | None
    global_relative: np.ndarray | None
    global_split: str | None
    sentence: str
    values: str
    disagrees: bool
    not_applicable: tuple[str, ...]
    global_uncertainty: str = ""


def match_attributes(
    local: LocalAttributes, prototype: int, class_name: str, global_: GlobalAttributes | None
) -> MatchAttributes:
    """Builds the view of one match from an image's local explanation and the stored global one."""
    phi = local.phi[prototype]
    keep = local.applicable
    global_phi = None if global_ is None else global_.phi[prototype]
    return MatchAttributes(
        prototype=prototype,
        names=local.modifications,
        local=phi,
        local_relative=relative(local.phi)[prototype],
        global_phi=global_phi,
        global_relative=None if global_ is None else relative(global_.phi)[prototype],
        global_split=None if global_ is None else global_.split,
        sentence=match_sentence(
            prototype,
            class_name,
            phi,
            local.modifications,
            local.not_applicable,
            rel=relative(local.phi)[prototype],
            global_phi=global_phi,
        ),
        values=sorted_values(
            phi[keep], [n for n, k in zip(local.modifications, keep, strict=True) if k]
        ),
        disagrees=global_phi is not None and local_disagrees(phi, global_phi, applicable=keep),
        not_applicable=local.not_applicable,
        global_uncertainty="" if global_ is None else uncertainty_sentence(global_, prototype),
    )


@dataclass(frozen=True)
class PrototypeAttributes:
    """One prototype's global explanation on train and test, both readings, and its verdicts.

    Attributes:
        names: modification names.
        train, test: ``[M]`` Φ on each split (``None`` where not computed).
        relative: ``[M]`` the relative reading (percentile of Φ's share among prototypes) on train,
            else test.
        not_applicable: modifications that cannot apply (grey-input models).
        sentence: in words (both readings named).
        uncertainty: in words, the two largest attributes with their bootstrap intervals ("cannot
            tell" where they overlap), or that the stored explanation has none.
        intervals: the prototype's bootstrap intervals, ``(low [M], high [M])``, of each series
            that has them: ``train``, ``test`` (Φ) and ``relative``.
        generalises: whether its explanation carries from train to test (``None`` without both).
        welch: per modification, Welch's (t, p) between train and test Φ over all prototypes.
    """

    names: tuple[str, ...]
    train: np.ndarray | None
    test: np.ndarray | None
    relative: np.ndarray
    not_applicable: tuple[str, ...]
    sentence: str
    generalises: bool | None
    welch: dict[str, tuple[float, float]]
    uncertainty: str = ""
    intervals: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def prototype_attributes(
    prototype: int,
    class_name: str,
    train: GlobalAttributes | None,
    test: GlobalAttributes | None,
) -> PrototypeAttributes:
    """Builds the view of one prototype from whichever splits are stored (at least one)."""
    main = train if train is not None else test
    if main is None:
        raise ValueError("no global attribute explanation is stored for this model yet")
    rel = relative(main.phi)
    common = most_common_top(main.phi, main.modifications, main.not_applicable)
    both = train is not None and test is not None
    return PrototypeAttributes(
        names=main.modifications,
        train=None if train is None else train.phi[prototype],
        test=None if test is None else test.phi[prototype],
        relative=rel[prototype],
        not_applicable=tuple(main.not_applicable),
        sentence=prototype_sentence(
            prototype,
            class_name,
            main.phi[prototype],
            rel[prototype],
            main.modifications,
            main.not_applicable,
            common_top=common,
        ),
        generalises=bool(generalises(train, test)[prototype]) if both else None,
        welch=welch_by_modification(train, test) if both else {},
        uncertainty=uncertainty_sentence(main, prototype),
        intervals=_prototype_intervals(prototype, train, test, main),
    )


def _prototype_intervals(
    prototype: int,
    train: GlobalAttributes | None,
    test: GlobalAttributes | None,
    main: GlobalAttributes,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One prototype's rows of the stored intervals (the relative reading's from ``main``)."""
    rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split, result in (("train", train), ("test", test)):
        if result is not None and result.phi_interval is not None:
            rows[split] = (result.phi_interval[0][prototype], result.phi_interval[1][prototype])
    if main.relative_interval is not None:
        low, high = main.relative_interval
        rows["relative"] = (low[prototype], high[prototype])
    return rows


def dose_curves(
    model: PrototypeModel,
    rgb: np.ndarray,
    prototype: int,
    mode: str,
    cell_size: float,
    attributes: tuple[str, ...] = ATTRIBUTES,
) -> dict[str, tuple[tuple[float, ...], np.ndarray]]:
    """φ of one prototype on one image at several strengths of each attribute (no-op first).

    Returns:
        attribute → (strengths, ``[S]`` φ), one batched forward per attribute.
    """
    curves = {}
    for attribute in attributes:
        mods = dose_response(
            attribute, mode, default_dose_strengths(attribute, mode),
            **({"cell_size": cell_size} if mode == "disentangled" and attribute in ("shape", "texture") else {}),
        )  # fmt: skip
        phi = local_attributes(model, rgb, mods).phi[prototype]  # [S]
        curves[attribute] = (tuple(m.strength for m in mods), phi)
    return curves
