"""provenance: the one manifest a saved model carries, written and read back, and the errors that say what to run."""

import json

import pytest

from gemma_helpers import provenance as P


def test_a_manifest_round_trips_with_its_base_as_given(tmp_path):
    record = P.Provenance(kind="merged", base="unsloth/gemma-3-270m-it", made_by="notebook 03", adapter="/a",
                          data="2000 puzzles", steps=60, dtype="bfloat16", extra={"lora_r": 16})
    path = P.write(tmp_path, record)
    assert path.name == "provenance.json" and not (tmp_path / "provenance.json.partial").exists()
    data = json.loads(path.read_text())
    assert data["format"] == 1 and data["created"].endswith("Z") and data["base"] == "unsloth/gemma-3-270m-it"
    back = P.read(tmp_path)
    assert back.base == "unsloth/gemma-3-270m-it" and not back.base_is_local  # a hub id stays an id
    assert (back.steps, back.dtype, back.extra) == (60, "bfloat16", {"lora_r": 16})
    assert P.Provenance(kind="adapter", base=str(tmp_path), made_by="x").base_is_local


@pytest.mark.parametrize("content, reason", [
    (None, "has no provenance.json"),
    ("{not json", "is not JSON"),
    ("[1, 2]", "holds no JSON object"),
    ('{"format": 1, "kind": "merged", "made_by": "x"}', r"missing \['base'\]"),
    ('{"format": 2, "kind": "merged", "base": "b", "made_by": "x"}', "format 2"),
])
def test_a_missing_or_broken_manifest_says_which_lesson_to_run(tmp_path, content, reason):
    if content is not None:
        (tmp_path / "provenance.json").write_text(content)
    with pytest.raises(P.ProvenanceError, match=reason) as err:
        P.read(tmp_path, "notebook 03 (03_finetune_chess_270m)")
    assert "run notebook 03" in str(err.value)


def test_write_refuses_a_record_without_a_base_or_with_an_unknown_kind(tmp_path):
    with pytest.raises(ValueError, match="needs its base"):
        P.write(tmp_path, P.Provenance(kind="merged", base="", made_by="x"))
    with pytest.raises(ValueError, match="kind must be one of"):
        P.write(tmp_path, P.Provenance(kind="lora", base="b", made_by="x"))
