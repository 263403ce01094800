"""Saved models carry the base's SentencePiece file; a folder that cannot be exported says which file it lacks."""

import json
import shutil

import pytest

from gemma_helpers import gguf_files, models, tokenizer_files


@pytest.fixture(scope="module")
def embedded_dir():
    return models.embedded_model_dir()


def tokenizer_folder(src, dst, names):
    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(src / name, dst / name)
    return dst


def test_the_embedded_folder_has_a_sentencepiece_file_that_tokenizes_as_its_tokenizer_json(embedded_dir):
    from sentencepiece import SentencePieceProcessor
    from transformers import AutoTokenizer

    sp = SentencePieceProcessor(model_file=str(embedded_dir / "tokenizer.model"))
    hf = AutoTokenizer.from_pretrained(embedded_dir)
    assert sp.get_piece_size() == 262_144
    for text in ("The capital of France is", "  two  spaces\n\n\tand a tab", "大语言模型可以在手机上运行。",
                 "def f(x):\n    return x ** 2  # ok", "emoji 😀🎉"):
        assert [2] + sp.encode(text) == hf(text)["input_ids"], text
    assert sp.piece_to_id("<start_of_turn>") == 105 and sp.piece_to_id("<end_of_turn>") == 106


def test_the_rebuilt_sentencepiece_file_gives_back_the_ggufs_vocabulary(embedded_dir):
    from gguf import GGUFReader
    from sentencepiece import SentencePieceProcessor

    reader = GGUFReader(str(models.embedded_gguf()))
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    sp = SentencePieceProcessor(model_file=str(embedded_dir / "tokenizer.model"))
    for i in (0, 1, 2, 3, 105, 106, 107, 138, 236743, 255968, 255999, 262143):
        piece = sp.id_to_piece(i)
        assert (piece.replace("\u2581", " ") if types[i] == 4 else piece) == tokens[i], i


def test_carry_copies_what_the_base_has_and_nothing_else(embedded_dir, tmp_path):
    out = tmp_path / "saved"
    out.mkdir()
    (out / "tokenizer.json").write_text("{}")
    assert tokenizer_files.carry(embedded_dir, out) == ["tokenizer.model"]
    assert (out / "tokenizer.json").read_text() == "{}"  # what save_pretrained wrote is kept
    assert tokenizer_files.carry("embedded", tmp_path / "none") == []  # not a folder, not a hub id: nothing


def test_a_released_layout_without_tokenizer_model_is_refused_with_the_fix_named(embedded_dir, tmp_path):
    """The released tokenizer.json holds 262,145 ids (<image_soft_token> at 262144) for a vocab_size of 262,144."""
    folder = tokenizer_folder(embedded_dir, tmp_path / "merged", ["config.json", "tokenizer_config.json"])
    data = json.loads((embedded_dir / "tokenizer.json").read_text())
    data["added_tokens"].append({"id": 262_144, "content": "<image_soft_token>", "single_word": False,
                                 "lstrip": False, "rstrip": False, "normalized": False, "special": True})
    (folder / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(gguf_files.TokenizerFilesError, match="no tokenizer.model.*262,145 ids.*Copy tokenizer.model"):
        gguf_files.check_tokenizer_files(folder)
    shutil.copyfile(embedded_dir / "tokenizer.model", folder / "tokenizer.model")
    gguf_files.check_tokenizer_files(folder)  # with the SentencePiece file the converter reads that instead
    shape = tokenizer_files.vocabulary_shape(folder)
    assert shape["entries"] == 262_145 and shape["special_ids"]["<image_soft_token>"] == 262_144
    assert shape["sentencepiece_pieces"] == 262_144


def test_a_folder_with_no_tokenizer_at_all_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"vocab_size": 262_144}))
    with pytest.raises(gguf_files.TokenizerFilesError, match="neither tokenizer.model nor tokenizer.json"):
        gguf_files.check_tokenizer_files(tmp_path)
