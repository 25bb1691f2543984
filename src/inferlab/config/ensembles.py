"""An experiment's ensembles resolved against its models: members found by name, the combination checked
against the dataset's task, and the members' inputs checked to take the same samples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inferlab.config.schema import EnsembleEntry, Experiment
from inferlab.config.words import Where
from inferlab.errors import ConfigError, did_you_mean
from inferlab.models.artifact import Artifact
from inferlab.models.inputs import merge
from inferlab.models.introspect import declared_inputs
from inferlab.records.ensemble import EnsembleSpec


@dataclass(frozen=True)
class Ensemble:
    field: str                  # where the config names it: ensemble, ensemble[1]
    entry: EnsembleEntry
    members: tuple[int, ...]    # indices into the experiment's models


def ensembles(exp: Experiment, where: Where) -> list[Ensemble]:
    """The experiment's ensembles, each member found among its models. Raises ConfigError naming the field."""
    names = {m.display_name(): i for i, m in enumerate(exp.models)}
    out = []
    for field, entry in exp.ensembles():
        found = []
        for j, name in enumerate(entry.members):
            if name not in names:
                raise ConfigError(f"{where(f'{field}.members[{j}]')}: '{name}' is not a model of this experiment "
                                  f"(its models: {', '.join(names)}){did_you_mean(name, list(names))}; name a "
                                  "models[] entry by its name or file stem")
            if names[name] in found:
                raise ConfigError(f"{where(f'{field}.members[{j}]')}: '{name}' is named twice; an ensemble's "
                                  "members are different models (give a second entry of the same file its own name)")
            found.append(names[name])
        if exp.dataset is not None and exp.dataset.task != "classification":
            raise ConfigError(f"{where(f'{field}.combine')}: an ensemble combines class scores, but a "
                              f"'{exp.dataset.format}' dataset is for {exp.dataset.task}; check its members "
                              "without the dataset, or on a classification dataset")
        out.append(Ensemble(field, entry, tuple(found)))
    return out


def members_in_ensembles(found: Sequence[Ensemble]) -> set[int]:
    return {i for e in found for i in e.members}


def check_same_inputs(exp: Experiment, ens: Ensemble, members: Sequence[Artifact], batch: int,
                      where: Where) -> None:
    """Members are fed the same samples: their inputs must have the same shapes, unless every member's input
    shape is the user's own (then each gets the samples in its own shape)."""
    shapes = []
    for m in members:
        declared = declared_inputs(m)
        assert declared is not None
        shapes.append([tuple(s.shape) for s in merge(declared, m.inputs, batch, m.name)])
    if all(s == shapes[0] for s in shapes):
        return
    given = [all(o.shape is not None for o in exp.models[i].inputs.values()) and bool(exp.models[i].inputs)
             for i in ens.members]
    if all(given):
        return
    j = next(k for k, s in enumerate(shapes) if s != shapes[0])
    lacking = next(k for k, g in enumerate(given) if not g)

    def dims(s: list[tuple[int, ...]]) -> str:
        return ", ".join("x".join(str(d) for d in shape) for shape in s)

    first = declared_inputs(members[lacking])
    name = first[0].name if first else "NAME"
    raise ConfigError(f"{where(f'{ens.field}.members')}: '{members[0].name}' takes {dims(shapes[0])} but "
                      f"'{members[j].name}' takes {dims(shapes[j])}, and members are fed the same samples; give each "
                      f"member its input shape (models[{ens.members[lacking]}].inputs.{name}.shape) to feed each "
                      "the samples in its own shape, or ensemble models that take the same input")


def ensemble_spec(exp: Experiment, ens: Ensemble, members: Sequence[Artifact]) -> EnsembleSpec:
    readings = tuple((exp.models[i].preprocess, exp.models[i].postprocess) for i in ens.members)
    return EnsembleSpec(ens.entry.display_name(), tuple(members), ens.entry.combine, readings)
