"""The support-aware term: loss on a language the mixture does not contain (docs/method.md §1b).

A byte-level model that never saw a script cannot predict its bytes: their loss is far above the
untrained loss and rises with training (the logits of never-seen byte values are pushed down at
every step). No effective ratio explains that, so the climb law adds a term for a target ``i``
whose own share is zero. With ``f_j(v)`` the unigram frequency of vocabulary item ``v`` (a byte)
in source ``j``'s text (a :class:`SupportProfile`), the *unseen mass* of ``i`` is the share of
``i``'s text made of items the run has seen fewer than about ``n0`` times (``n0 = 1``: never):

    u_i(p, D) = Σ_v f_i(v) · exp(−D · Σ_j p_j f_j(v) / n0)      when p_i = 0,   u_i = 0 when p_i > 0

A text whose items are partly unseen is out of distribution as a whole (its seen bytes come in
unseen contexts), so the *gate* ``s_i = min(1, u_i / τ)`` reaches 1 once a fraction ``τ`` of the
text is unseen. The loss splits into the climb law (at most the ceiling ``C_i ≤ L_0``, below)
and the unsupported loss ``G``:

    L_i = (1 − s_i) · min(L_i^climb, C_i) + s_i · G_i(p, D)
    G_i(p, D) = min(g_0i + g_1i ln(D / D_ref) + g_2i (L_0 − ℓ̄(p, D)), 2 L_0)

``ℓ̄(p, D) = Σ_j p_j min(L_j^climb, L_0) / Σ_j p_j`` over the trained sources that are targets
(``L_0`` where there are none) is the loss the model reaches on its own training text: a model
that predicts its own text confidently pays more where it is wrong. ``g_1i, g_2i ≥ 0``.
Where ``p_i = 0`` the predicted loss is bounded by ``2 L_0`` (``L_0 = log2 V`` bits per item:
8 bits per byte).

*Ceilings of the seen part* (``support_ceiling=True``, the default). Where a run leaves ``i`` out
but knows its script (``s_i ≈ 0``) the prediction is the climb law's through transfer alone, and
where no proxy identifies the donors' transfer to ``i``, ``r_i`` hits its floor and the climb part
explodes, while such models measure a few bits above the trained loss. So

    C_i = min(C, max{L_i measured where p_i = 0 and s_i < 1/2}) ≤ L_0     (L_0 where none)

with the shared ``C`` fitted with ``G`` (:func:`fit_ceiling`). The term then covers every target a
row leaves out (``p_i = 0``, evaluation-only targets included) even where ``s_i = 0``. Without
ceilings (``support_ceiling=False``, laws saved before them) ``C_i = L_0`` and only ``s_i > 0``
pairs are touched.

*Trace shares.* A language seen for only a few hundred tokens is still mostly unsupported (a
byte-level proxy scores 9.5–10.7 bits/byte on Russian or Korean at 0.1% of 300k tokens), which the
climb law's ``(r D)^(−β)`` does not follow. With a trace scale ``T_0`` (``support_trace``, in the
runs' tokens; default 1000), where ``0 < p_i D < 30 T_0`` the same gate is

    s_i = exp(−p_i D / T_0) · min(1, u_i^{−i} / τ)

with ``u_i^{−i}`` the unseen mass of ``i`` under the mixture without its own share: a language
whose bytes the other sources cover (French next to English) gets none. Beyond ``30 T_0`` own
tokens, and without ``T_0``, ``s_i = 0`` and ``L_i = L_i^climb`` exactly (in particular when
every language has at least ``30 T_0`` tokens).

The climb part is fitted exactly as without the term (so every prediction where the language has
a share beyond the trace gate is unchanged); then one ``(g_0, g_1, g_2)``, shared by all targets,
is fitted by bounded least squares on the runs' (row, target) pairs with ``s > 0``, at each ``C``
of a grid when the law has ceilings. ``n0``, ``τ`` and the ``ℓ̄`` feature were selected by
cross-validation on three sets of multilingual proxies, ``T_0`` on the demos' proxies and checked
on trace-share runs trained afterwards, the ceilings on the demos' proxies and checked on their
replicate seeds (docs/laws.md). The JSON keeps one ``(g_0i, g_1i, g_2i)`` and ``C_i`` per
target. (A per-target ``G_i`` fitted jointly with the climb parameters predicted held-out
runs worse: docs/laws.md.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Self

import numpy as np
from scipy.optimize import lsq_linear

from climb.errors import ClimbError
from climb.laws.climb.ratio import own_shares

SEEN_COUNT = 1.0
"""Default ``n0``: an item counts as seen after about this many expected occurrences
(selected by cross-validation on multilingual proxies; docs/laws.md)."""

UNSEEN_GATE = 0.3
"""Default ``τ``: the unseen mass at which a text counts as wholly unsupported (selected with
``n0``)."""

TRACE_TOKENS: float | None = 1000.0
"""Default ``T_0`` of the trace gate, in the runs' tokens (``None``: no trace gate): chosen on the
demos' own proxies, validated on trace-share runs trained afterwards (benchmarks/trace_shares.py,
docs/laws.md)."""

SEEN_PART = 0.5
"""A left-out target's measured loss bounds its seen part (:func:`measured_ceiling`) where its
gate is below this (the seen part is most of the prediction)."""

DENSE_VOCAB = 1024
"""A profile over at most this many items is written as dense lists; a larger (token) vocabulary
as each language's nonzero items (:meth:`SupportProfile.to_json`)."""

CEILING_GRID = 61
"""Values of the shared ceiling ``C`` tried in ``[L_0/4, L_0]`` (0.1 bit apart for bytes)."""

TRACE_CUTOFF = 30.0
"""The trace gate is exactly 0 once a target's own tokens exceed ``30 T_0`` (``e^(-30) ≈ 1e-13``):
the law is exactly the climb law there."""


@dataclass(frozen=True)
class SupportProfile:
    """Unigram frequencies of each language's training text over one vocabulary.

    Attributes:
        names: the languages (sources and evaluation-only targets).
        frequencies: ``(K, V)``, row ``k`` the frequency of each item in ``names[k]``'s text
            (each row sums to 1).
        untrained_loss: ``L_0``, the loss of a uniform prediction over the ``V`` items in the
            run table's unit (``log2 V``: 8 bits per byte for a byte-level vocabulary).
    """

    names: list[str]
    frequencies: np.ndarray
    untrained_loss: float

    def __post_init__(self) -> None:
        f = np.asarray(self.frequencies, dtype=float)
        if f.ndim != 2 or f.shape[0] != len(self.names) or f.shape[1] < 2:
            raise ClimbError(
                f"support profile: frequencies must be (languages × vocabulary), got {f.shape} "
                f"for {len(self.names)} language(s)"
            )
        if not np.all(np.isfinite(f)) or (f < 0).any() or (f.sum(axis=1) <= 0).any():
            raise ClimbError("support profile: frequencies must be ≥ 0 with a positive row sum")
        if not (np.isfinite(self.untrained_loss) and self.untrained_loss > 0):
            raise ClimbError("support profile: untrained_loss must be > 0")
        object.__setattr__(self, "frequencies", f / f.sum(axis=1, keepdims=True))
        object.__setattr__(self, "names", list(self.names))

    @classmethod
    def from_texts(cls, texts: dict[str, bytes]) -> Self:
        """Byte frequencies of each language's UTF-8 text (``V = 256``, ``L_0 = 8`` bits/byte)."""
        rows = []
        for name, data in texts.items():
            counts = np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)
            if counts.sum() == 0:
                raise ClimbError(f"support profile: language '{name}' has no text")
            rows.append(counts.astype(float))
        return cls(list(texts), np.array(rows), math.log2(256))

    @classmethod
    def from_corpus(cls, corpus: Any, names: Sequence[str], tokenizer: Any = None) -> Self:
        """Item frequencies of the training split of ``names`` in a
        :class:`~climb.data.corpus.Corpus`: bytes (``tokenizer`` None or byte-level), or the
        tokens of the proxies' ``tokenizer`` (:meth:`from_token_ids`)."""
        corpus.check_sources(names)
        texts = {s: corpus.text_bytes(s) for s in names}
        if tokenizer is None or getattr(tokenizer, "key", "bytes") == "bytes":
            return cls.from_texts(texts)
        from climb.proxy.tokenize import encode_cached

        ids = {s: encode_cached(tokenizer, data) for s, data in texts.items()}
        nbytes = sum(len(data) for data in texts.values())
        return cls.from_token_ids(ids, int(tokenizer.vocab_size), nbytes)

    @classmethod
    def from_token_ids(cls, ids: dict[str, np.ndarray], vocab_size: int, n_bytes: int) -> Self:
        """Token frequencies of each language's training text (``V = vocab_size``) for runs whose
        losses are in bits per byte (the proxy trainer's unit whatever the tokenizer): ``L_0`` is
        the uniform prediction's ``log2 V`` bits per token at the texts' mean tokens per byte,
        ``log2 V · Σ tokens / n_bytes``."""
        rows = []
        for name, x in ids.items():
            counts = np.bincount(np.asarray(x, dtype=np.int64), minlength=vocab_size)
            if counts.sum() == 0:
                raise ClimbError(f"support profile: language '{name}' has no text")
            rows.append(counts[:vocab_size].astype(float))
        tokens = sum(len(x) for x in ids.values())
        return cls(list(ids), np.array(rows), math.log2(vocab_size) * tokens / n_bytes)

    def rows(self, names: Sequence[str], what: str = "languages") -> np.ndarray:
        """The frequency rows of ``names`` (one-line error naming the missing ones)."""
        missing = [s for s in names if s not in self.names]
        if missing:
            raise ClimbError(
                f"support profile: no frequencies for {what} {', '.join(missing)} (it has "
                f"{', '.join(self.names)}); build it from the corpus the runs were trained on"
            )
        return self.frequencies[[self.names.index(s) for s in names]]

    def to_json(self) -> dict[str, Any]:
        """``frequencies``: a list per language over a vocabulary of ≤ :data:`DENSE_VOCAB`
        items (bytes); over a larger one (tokens) only the items a language has, as
        ``{"ids": [...], "freq": [...]}``, with ``vocab_size``."""
        V = self.frequencies.shape[1]
        if V <= DENSE_VOCAB:
            freq: dict[str, Any] = {
                s: [float(x) for x in row] for s, row in zip(self.names, self.frequencies)
            }
            return {"untrained_loss": float(self.untrained_loss), "frequencies": freq}
        freq = {}
        for s, row in zip(self.names, self.frequencies):
            nz = np.flatnonzero(row)
            freq[s] = {"ids": nz.tolist(), "freq": [float(x) for x in row[nz]]}
        return {"untrained_loss": float(self.untrained_loss), "vocab_size": int(V),
                "frequencies": freq}  # fmt: skip

    @classmethod
    def from_json(cls, obj: Any, law: str = "climb") -> Self:
        try:
            freq = obj["frequencies"]
            names = list(freq)
            if "vocab_size" not in obj:  # dense rows (bytes)
                rows = np.array([freq[s] for s in names], dtype=float)
            else:
                rows = np.zeros((len(names), int(obj["vocab_size"])))
                for k, s in enumerate(names):
                    rows[k, np.asarray(freq[s]["ids"], dtype=int)] = freq[s]["freq"]
            return cls(names, rows, float(obj["untrained_loss"]))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ClimbError(
                f"law JSON ({law}): 'support' needs 'untrained_loss' and 'frequencies' "
                f"(language → list of item frequencies): {exc}"
            ) from None


@dataclass
class SupportTerm:
    """The fitted support-aware term of a climb law (see the module docstring).

    ``source_freq`` is ``(S, V)`` over the law's sources, ``target_freq`` ``(T, V)`` over its
    targets; ``own`` the source column of each target (−1: evaluation-only, never has a share).
    """

    source_freq: np.ndarray
    target_freq: np.ndarray
    own: np.ndarray
    untrained_loss: float
    n0: float
    g0: np.ndarray  # (T,)
    g1: np.ndarray  # (T,)
    tokens_ref: float
    g2: np.ndarray | None = None  # (T,); None: 0 (laws saved before the ℓ̄ feature)
    gate: float = 1.0  # τ; 1: the gate is the unseen mass itself (laws saved before the gate)
    trace_tokens: float | None = None  # T_0 of the trace gate; None: none (laws saved before it)
    ceiling: np.ndarray | None = None  # (T,) C_i of the seen part; None: L_0 (laws saved before it)

    def __post_init__(self) -> None:
        if self.g2 is None:
            self.g2 = np.zeros_like(self.g0)

    def own_share(self, p: np.ndarray) -> np.ndarray:
        """Each target's own share in each row (:func:`~climb.laws.climb.ratio.own_shares`)."""
        return own_shares(p, self.own)

    def unseen_mass(self, p: np.ndarray, tokens: np.ndarray | float) -> np.ndarray:
        """``u_i(p, D) = Σ_v f_i(v) exp(−D Σ_j p_j f_j(v) / n0)`` where ``p_i = 0``, else 0:
        ``(n, T)`` for ``p`` ``(n, S)``."""
        p2 = np.atleast_2d(np.asarray(p, dtype=float))
        d = np.broadcast_to(np.asarray(tokens, dtype=float), (p2.shape[0],))
        seen = np.exp(-(d[:, None] / self.n0) * (np.maximum(p2, 0.0) @ self.source_freq))
        u = seen @ self.target_freq.T  # (n, T)
        return np.where(self.own_share(p2) > 0, 0.0, np.clip(u, 0.0, 1.0))

    def gate_weight(self, p: np.ndarray, tokens: np.ndarray | float) -> np.ndarray:
        """``s_i = min(1, u_i / τ)`` where ``p_i = 0``; with a trace gate, where ``0 < p_i D <
        30 T_0``: ``s_i = exp(−p_i D / T_0) · min(1, u_i^{−i} / τ)``, ``u_i^{−i}`` the unseen mass
        of ``i`` with its own share removed (0 when the other sources cover its bytes): ``(n, T)``."""
        s = np.minimum(self.unseen_mass(p, tokens) / self.gate, 1.0)
        if self.trace_tokens is None:
            return s
        p2 = np.atleast_2d(np.asarray(p, dtype=float))
        d = np.broadcast_to(np.asarray(tokens, dtype=float), (p2.shape[0],))
        own = self.own_share(p2) * d[:, None]
        trace = (own > 0) & (own < TRACE_CUTOFF * self.trace_tokens)
        for k in np.flatnonzero(trace.any(axis=0)):
            rows = trace[:, k]
            q = p2[rows].copy()
            q[:, self.own[k]] = 0.0
            seen = np.exp(-(d[rows, None] / self.n0) * (np.maximum(q, 0.0) @ self.source_freq))
            left_out = np.clip(seen @ self.target_freq[k], 0.0, 1.0)
            s[rows, k] = np.exp(-own[rows, k] / self.trace_tokens) * np.minimum(
                left_out / self.gate, 1.0
            )
        return s

    def own_loss(self, loss: np.ndarray, p: np.ndarray) -> np.ndarray:
        """``ℓ̄(p, D)``: the share-weighted loss, capped at ``L_0``, of the trained sources that
        are targets (``L_0`` where there are none): ``(n,)`` for ``loss`` ``(n, T)``."""
        p2 = np.atleast_2d(np.asarray(p, dtype=float))
        shares = self.own_share(p2)
        total = shares.sum(axis=1)
        capped = np.minimum(np.where(self.own >= 0, loss, 0.0), self.untrained_loss)
        mean = (shares * capped).sum(axis=1) / np.where(total > 0, total, 1.0)
        return np.where(total > 0, mean, self.untrained_loss)

    def features(self, loss: np.ndarray, p: np.ndarray, tokens: np.ndarray | float) -> np.ndarray:
        """``(1, ln(D/D_ref), L_0 − ℓ̄)`` per row: ``(n, 3)``."""
        p2 = np.atleast_2d(np.asarray(p, dtype=float))
        d = np.broadcast_to(np.asarray(tokens, dtype=float), (p2.shape[0],))
        confidence = self.untrained_loss - self.own_loss(loss, p2)
        return np.column_stack([np.ones_like(d), np.log(d / self.tokens_ref), confidence])

    def unsupported_loss(
        self, loss: np.ndarray, p: np.ndarray, tokens: np.ndarray | float
    ) -> np.ndarray:
        """``G_i(p, D) = min(g_0i + g_1i ln(D/D_ref) + g_2i (L_0 − ℓ̄), 2 L_0)``: ``(n, T)``."""
        x = self.features(loss, p, tokens)
        g = x[:, :1] * self.g0 + x[:, 1:2] * self.g1 + x[:, 2:3] * self.g2
        return np.minimum(g, 2 * self.untrained_loss)

    def apply(self, loss: np.ndarray, p: np.ndarray, tokens: np.ndarray | float) -> np.ndarray:
        """``(1 − s) min(L, C) + s G(p, D)`` on the term's pairs (:meth:`covers`; ``C``: the
        ceilings ``C_i``, or ``L_0`` without them); ``loss`` unchanged elsewhere."""
        s = self.gate_weight(p, tokens)
        on = self.covers(p, s)
        if not on.any():
            return loss
        mixed = (1 - s) * np.minimum(loss, self.seen_ceiling())
        mixed = mixed + s * self.unsupported_loss(loss, p, tokens)
        return np.where(on, mixed, loss)

    def covers(self, p: np.ndarray, s: np.ndarray) -> np.ndarray:
        """The (row, target) pairs the term predicts, given their gates ``s``: ``s > 0``, and with
        ceilings also every target the row leaves out (``p_i = 0``, evaluation-only targets
        included), whose seen part is then bounded by ``C_i`` even where its whole text is seen
        (``s = 0``): ``(n, T)``."""
        if self.ceiling is None:
            return s > 0
        return (s > 0) | (self.own_share(p) <= 0)

    def seen_ceiling(self) -> np.ndarray | float:
        """``C_i`` per target (``L_0`` for a law without ceilings)."""
        return self.untrained_loss if self.ceiling is None else self.ceiling

    def to_json(self, sources: list[str], targets: list[str]) -> dict[str, Any]:
        freq = {s: row for s, row in zip(sources, self.source_freq)}
        freq.update({t: row for t, row in zip(targets, self.target_freq)})
        profile = SupportProfile(list(freq), np.array(list(freq.values())), self.untrained_loss)
        out = {**profile.to_json(), "n0": self.n0, "gate": self.gate, "g0": self.g0.tolist(),
               "g1": self.g1.tolist(), "g2": np.asarray(self.g2).tolist(),
               "tokens_ref": self.tokens_ref}  # fmt: skip
        if self.trace_tokens is not None:
            out["trace_tokens"] = float(self.trace_tokens)
        if self.ceiling is not None:
            out["ceiling"] = [float(x) for x in self.ceiling]
        return out

    @classmethod
    def from_json(
        cls, obj: Any, sources: list[str], targets: list[str], own: np.ndarray, law: str
    ) -> Self:
        profile = SupportProfile.from_json(obj, law)
        t = len(targets)
        try:
            n0, ref = float(obj["n0"]), float(obj["tokens_ref"])
            g0 = np.asarray(obj["g0"], dtype=float).reshape(t)
            g1 = np.asarray(obj["g1"], dtype=float).reshape(t)
            g2 = np.asarray(obj.get("g2", [0.0] * t), dtype=float).reshape(t)
            gate = float(obj.get("gate", 1.0))  # laws saved before the gate: s = u
            trace = obj.get("trace_tokens")  # laws saved before the trace gate: none
            trace = None if trace is None else float(trace)
            ceiling = obj.get("ceiling")  # laws saved before the ceilings: L_0
            ceiling = None if ceiling is None else np.asarray(ceiling, dtype=float).reshape(t)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ClimbError(
                f"law JSON ({law}): 'support' needs numbers 'n0', 'tokens_ref' and lists 'g0', "
                f"'g1' (and 'g2', 'ceiling' if given) of {t} (one per target)"
            ) from None
        if n0 <= 0 or ref <= 0 or not 0 < gate <= 1 or (g1 < 0).any() or (g2 < 0).any() \
                or not np.isfinite(g0).all() or not (trace is None or 0 < trace < np.inf) \
                or not (ceiling is None or (np.isfinite(ceiling).all() and (ceiling > 0).all()
                                            and (ceiling <= profile.untrained_loss).all())):  # fmt: skip
            raise ClimbError(
                f"law JSON ({law}): 'support' needs n0 > 0, tokens_ref > 0, 0 < gate ≤ 1, "
                "g1 ≥ 0, g2 ≥ 0, trace_tokens > 0 (or absent), 0 < ceiling ≤ untrained_loss "
                "(or absent)"
            )
        return cls(profile.rows(sources, "sources"), profile.rows(targets, "targets"), own,
                   profile.untrained_loss, n0, g0, g1, ref, g2, gate, trace, ceiling)  # fmt: skip


def support_term_for(
    profile: SupportProfile, runs: Any, n0: float, gate: float, trace: float | None = None,
    ceiling: bool = False,
) -> SupportTerm:  # fmt: skip
    """The unfitted term of a law over ``runs``' sources and targets (``G = L_0`` until
    :func:`fit_support` fits it); ``trace``: ``T_0`` of the trace gate (None: none); ``ceiling``:
    whether :func:`fit_support` fits the ceilings ``C_i`` (else the seen part is capped at
    ``L_0``)."""
    t = len(runs.targets)
    return SupportTerm(
        source_freq=profile.rows(list(runs.sources), "sources"),
        target_freq=profile.rows(list(runs.targets), "targets"),
        own=np.array([runs.sources.index(x) if x in runs.sources else -1 for x in runs.targets]),
        untrained_loss=profile.untrained_loss, n0=float(n0),
        g0=np.full(t, profile.untrained_loss), g1=np.zeros(t),
        tokens_ref=float(np.exp(np.mean(np.log(np.unique(runs.tokens))))),
        g2=np.zeros(t), gate=float(gate), trace_tokens=None if trace is None else float(trace),
        ceiling=np.full(t, profile.untrained_loss) if ceiling else None,
    )  # fmt: skip


def check_support_options(
    law: str, support: Any, count: Any, gate: Any, trace: Any = None, ceiling: Any = True
) -> None:
    """One-line errors for a law's ``support``, ``support_count``, ``support_gate``,
    ``support_trace`` and ``support_ceiling``."""
    if support is not None and not isinstance(support, SupportProfile):
        raise ClimbError(
            f"{law} law: support must be a SupportProfile (or None), got {type(support).__name__}"
        )
    if not (isinstance(count, int | float) and np.isfinite(count) and count > 0):
        raise ClimbError(f"{law} law: support_count must be > 0, got {count!r}")
    if not (isinstance(gate, int | float) and 0 < gate <= 1):
        raise ClimbError(f"{law} law: support_gate must be in (0, 1], got {gate!r}")
    if trace is not None and not (
        isinstance(trace, int | float) and not isinstance(trace, bool) and 0 < trace < np.inf
    ):
        raise ClimbError(f"{law} law: support_trace must be > 0 tokens (or None), got {trace!r}")
    if not isinstance(ceiling, bool):
        raise ClimbError(f"{law} law: support_ceiling must be true or false, got {ceiling!r}")


class SupportOptions:
    """Mixin of a law with the support-aware term's hyper-parameters ``support`` (a
    :class:`SupportProfile` or None), ``support_count`` (``n0``), ``support_gate`` (``τ``),
    ``support_trace`` (``T_0``) and ``support_ceiling`` (fit ``C_i``), stored by its
    ``__init__``: their validation and the unfitted term for a run table. The climb family keeps
    the fitted term in its parameters; the baselines in ``support_``
    (:class:`climb.laws.supported.SupportedLaw`)."""

    name: ClassVar[str]
    support: SupportProfile | None
    support_count: float
    support_gate: float
    support_trace: float | None
    support_ceiling: bool

    def _check_support(self) -> None:
        check_support_options(
            self.name, self.support, self.support_count, self.support_gate, self.support_trace,
            self.support_ceiling,
        )  # fmt: skip

    def _restore_support(
        self, term: SupportTerm | None, sources: list[str], targets: list[str]
    ) -> None:
        """After loading a law JSON: the fitted term's profile, ``n0``, ``τ``, ``T_0`` and whether
        it has ceilings as the hyper-parameters (``support`` None where the law has no term), so
        that the loaded law refits (:meth:`~climb.laws.base.Law.clone`) the same way it was
        fitted."""
        if term is None:
            self.support = None
            return
        freq = dict(zip(sources, term.source_freq))
        freq.update(zip(targets, term.target_freq))
        self.support = SupportProfile(list(freq), np.array(list(freq.values())),
                                      term.untrained_loss)  # fmt: skip
        self.support_count, self.support_gate = term.n0, term.gate
        self.support_trace = term.trace_tokens
        self.support_ceiling = term.ceiling is not None

    def _support_term(self, runs: Any) -> SupportTerm | None:
        """The term's fixed part (frequencies, ``n0``, ``τ``, ``T_0``, whether to fit ``C_i``)
        for ``runs`` (None without a profile)."""
        if self.support is None:
            return None
        return support_term_for(
            self.support, runs, self.support_count, self.support_gate, self.support_trace,
            self.support_ceiling,
        )  # fmt: skip


def fit_support(term: SupportTerm, law_loss: np.ndarray, runs: Any) -> SupportTerm:
    """``term`` with ``(g_0, g_1, g_2)`` and, if it has ceilings, ``C_i``
    (:func:`fit_unseen_loss`) given the law's own predictions ``law_loss`` of ``runs``
    (``(n, T)``, without the term)."""
    if term.ceiling is None:
        g = fit_unseen_loss(term, law_loss, runs.p, runs.tokens, runs.loss)
    else:
        measured = measured_ceiling(term, runs.p, runs.tokens, runs.loss)
        g, c = fit_ceiling(term, law_loss, runs.p, runs.tokens, runs.loss, measured)
        term.ceiling = np.minimum(measured, c)
    term.g0, term.g1, term.g2 = (np.full_like(term.g0, x) for x in g)
    return term


def measured_ceiling(
    term: SupportTerm, p: np.ndarray, tokens: np.ndarray, observed: np.ndarray
) -> np.ndarray:
    """Per target, the highest loss measured where a run left it out with its script seen
    (``p_i = 0`` and ``s_i < 1/2``: the seen part dominates), ``L_0`` where there is none,
    never above ``L_0``: ``(T,)``."""
    s = term.gate_weight(p, tokens)
    seen = (term.own_share(p) <= 0) & (s < SEEN_PART) & np.isfinite(observed)
    top = np.where(seen, observed, -np.inf).max(axis=0)
    L0 = term.untrained_loss
    return np.where(np.isfinite(top), np.minimum(top, L0), L0)


def fit_ceiling(
    term: SupportTerm, climb_loss: np.ndarray, p: np.ndarray, tokens: np.ndarray,
    observed: np.ndarray, measured: np.ndarray,
) -> tuple[np.ndarray, float]:  # fmt: skip
    """The shared ceiling ``C`` on a grid of :data:`CEILING_GRID` values in ``[L_0/4, L_0]``
    that gives the least total absolute error over the term's pairs (:meth:`SupportTerm.covers`),
    with ``C_i = min(measured_i, C)`` and ``(g_0, g_1, g_2)`` fitted by :func:`fit_unseen_loss`
    at each ``C``: returns ``g`` and ``C`` (ties: the largest ``C``, the least change)."""
    s = term.gate_weight(p, tokens)
    m = term.covers(p, s) & np.isfinite(observed)
    L0 = term.untrained_loss
    if not m.any():
        return np.array([L0, 0.0, 0.0]), L0
    best: tuple[float, np.ndarray, float] | None = None
    for c in L0 * np.linspace(1.0, 0.25, CEILING_GRID):
        cap = np.minimum(measured, c)
        g = fit_unseen_loss(term, climb_loss, p, tokens, observed, cap)
        trial = replace(term, g0=np.full_like(term.g0, g[0]), g1=np.full_like(term.g1, g[1]),
                        g2=np.full_like(term.g0, g[2]), ceiling=cap)  # fmt: skip
        pred = trial.apply(climb_loss, p, tokens)
        err = float(np.abs(pred[m] - observed[m]).sum())
        if best is None or err < best[0] - 1e-9:
            best = (err, g, float(c))
    assert best is not None
    return best[1], best[2]


def fit_unseen_loss(
    term: SupportTerm, climb_loss: np.ndarray, p: np.ndarray, tokens: np.ndarray,
    observed: np.ndarray, ceiling: np.ndarray | float | None = None,
) -> np.ndarray:  # fmt: skip
    """Bounded least-squares ``(g_0, g_1, g_2)`` of one ``G`` shared by all targets, from every
    measured (row, target) pair with a gate ``s > 0`` (left out, or a trace share):
    ``L_obs − (1 − s) min(L^climb, C) = s (g_0 + g_1 ln(D/D_ref) + g_2 (L_0 − ℓ̄))``, with
    ``g_1, g_2 ≥ 0`` (a feature that does not vary over those pairs, e.g. one budget, gets 0) and
    ``C`` the ceilings (``(T,)`` or a number; None: ``L_0``).
    Without such pairs (no run leaves a language out) ``G = L_0``: the unsupported part is
    predicted at the untrained loss, not fitted."""
    s = term.gate_weight(p, tokens)
    m = (s > 0) & np.isfinite(observed)
    if not m.any():
        return np.array([term.untrained_loss, 0.0, 0.0])
    cap = np.broadcast_to(term.untrained_loss if ceiling is None else ceiling, s.shape)
    x = np.broadcast_to(term.features(climb_loss, p, tokens)[:, None, :], (*s.shape, 3))[m]
    y = observed[m] - (1 - s[m]) * np.minimum(climb_loss[m], cap[m])
    varies = np.ptp(x, axis=0) > 1e-12
    varies[0] = True
    coef = np.zeros(3)
    lower = [-np.inf] + [0.0] * (int(varies.sum()) - 1)  # g_0 free, g_1, g_2 ≥ 0
    fit = lsq_linear(s[m][:, None] * x[:, varies], y, bounds=(lower, np.inf))
    coef[varies] = fit.x
    return coef


__all__ = [
    "SEEN_COUNT",
    "TRACE_TOKENS",
    "UNSEEN_GATE",
    "SupportOptions",
    "SupportProfile",
    "SupportTerm",
    "check_support_options",
    "fit_ceiling",
    "fit_support",
    "fit_unseen_loss",
    "measured_ceiling",
    "support_term_for",
]
