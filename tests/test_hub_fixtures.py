"""The Hub stand-in's content (scripts/hub_standin/build.py): real ids, real schemas, real tokenizer, working models.

Built once per session at a tiny row scale into a temporary folder and read back with plain file reads (no server).
"""

import json
from pathlib import Path

import pytest
from script_loader import load_script

REPO = Path(__file__).resolve().parents[1]
SCALE = 0.02


build = load_script("scripts/hub_standin/build.py", "hub_standin_build")


@pytest.fixture(scope="session")
def root(tmp_path_factory):
    """A stand-in built at a tiny row scale."""
    path = tmp_path_factory.mktemp("hub") / "standin"
    build.build(path, SCALE)
    return path


def model_dir(root, repo):
    return root / "models" / repo


def dataset_dir(root, repo):
    return root / "datasets" / repo


# ------------------------------------------------------------------------------------------------ the build


def test_second_build_is_skipped_by_the_stamp(root):
    before = (root / build.STAMP).stat().st_mtime_ns
    stamp = build.build(root, SCALE)
    assert (root / build.STAMP).stat().st_mtime_ns == before
    assert stamp["builder_version"] == build.BUILDER_VERSION and stamp["rows_scale"] == SCALE


def test_layout_holds_every_real_id(root):
    for repo in (*build.TEXT_MODELS, *build.VISION_MODELS):
        assert (model_dir(root, repo) / "model.safetensors").is_file(), repo
    for repo in build.DATASETS:
        assert (dataset_dir(root, repo) / "README.md").is_file(), repo


def test_stand_in_stays_small(root):
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and p.stat().st_nlink == 1)
    shared = {p.stat().st_ino: p.stat().st_size for p in root.rglob("*") if p.is_file() and p.stat().st_nlink > 1}
    assert total + sum(shared.values()) < 250e6


# ------------------------------------------------------------------------------------------------ models


@pytest.mark.parametrize("repo", build.TEXT_MODELS)
def test_text_model_config_keeps_the_real_keys(root, repo):
    from transformers import AutoConfig, GenerationConfig

    config = AutoConfig.from_pretrained(model_dir(root, repo))
    assert config.model_type == "gemma3_text" and config.architectures == ["Gemma3ForCausalLM"]
    assert config.vocab_size == 262_144 and config.max_position_embeddings == 32_768
    assert set(config.layer_types) == {"sliding_attention", "full_attention"} and config.sliding_window == 512
    assert config.rope_parameters["full_attention"]["rope_theta"] == 1_000_000.0
    assert config.rope_parameters["sliding_attention"]["rope_theta"] == 10_000.0
    assert config.dtype == "bfloat16" or str(config.dtype).endswith("bfloat16")
    assert GenerationConfig.from_pretrained(model_dir(root, repo)).eos_token_id == [1, 106]


def test_vision_config_has_the_real_geometry_and_tokens(root):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir(root, "unsloth/gemma-3-4b-it"))
    assert config.architectures == ["Gemma3ForConditionalGeneration"]
    assert (config.boi_token_index, config.eoi_token_index, config.image_token_index) == (255_999, 256_000, 262_144)
    assert config.mm_tokens_per_image == 256 and config.text_config.vocab_size == 262_208
    assert (config.vision_config.image_size, config.vision_config.patch_size) == (896, 14)
    assert config.text_config.rope_parameters["full_attention"]["factor"] == 8.0
    preprocessor = json.loads((model_dir(root, "unsloth/gemma-3-4b-it") / "preprocessor_config.json").read_text())
    assert preprocessor["image_processor_type"] == "Gemma3ImageProcessor"
    assert preprocessor["size"] == {"height": 896, "width": 896} and preprocessor["image_seq_length"] == 256


@pytest.mark.parametrize("repo", ["unsloth/gemma-3-270m-it", "unsloth/gemma-3-4b-pt"])
def test_tokenizer_is_the_real_gemma3_one(root, repo):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir(root, repo))
    assert tokenizer("The capital of France is")["input_ids"] == [2, 818, 5279, 529, 7001, 563]
    assert tokenizer.convert_tokens_to_ids(["<start_of_turn>", "<end_of_turn>", "<start_of_image>"]) == \
        [105, 106, 255_999]


def test_chat_template_renders_a_user_turn(root):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir(root, "unsloth/gemma-3-1b-it"))
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Name a chess opening."}], tokenize=False,
                                         add_generation_prompt=True)
    assert text == "<bos><start_of_turn>user\nName a chess opening.<end_of_turn>\n<start_of_turn>model\n"


def test_text_stand_in_generates(root):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = model_dir(root, "unsloth/gemma-3-270m-it")
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path)
    inputs = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=2, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 2


def test_vision_stand_in_answers_an_image_through_its_processor(root):
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = model_dir(root, "unsloth/gemma-3-4b-it")
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is shown?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=text, images=[Image.new("RGB", (320, 240), "teal")], return_tensors="pt",
                       add_special_tokens=False)
    ids = inputs["input_ids"][0].tolist()
    assert ids[:2] == [2, 105] and ids.count(262_144) == 256 and 255_999 in ids and 256_000 in ids
    assert tuple(inputs["pixel_values"].shape) == (1, 3, 896, 896)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=1, do_sample=False)
    assert out.shape[1] == len(ids) + 1


# ------------------------------------------------------------------------------------------------ datasets


def _card(root, repo):
    import yaml

    text = (dataset_dir(root, repo) / "README.md").read_text()
    return yaml.safe_load(text.split("---\n")[1])


def test_every_declared_config_matches_files(root):
    for repo in build.DATASETS:
        for config in _card(root, repo).get("configs", []):
            for entry in config["data_files"]:
                assert list(dataset_dir(root, repo).glob(entry["path"])), (repo, config["config_name"], entry)


def test_chess_instruct_rows_use_the_real_formats(root):
    import chess
    from datasets import Dataset

    train = Dataset.from_csv(str(dataset_dir(root, build.CHESS) / "train.csv"))
    assert train.column_names == ["task", "input", "expected_output", "KIND"]
    assert len(set(train["KIND"])) >= 5
    playable = unplayable = 0
    for row in train:
        moves, out = json.loads(row["input"]).get("moves"), json.loads(row["expected_output"])
        if row["KIND"] == "FIND_LAST_MOVE":
            assert moves[-1] == "?" and set(out) == {"missing move"}
            board = chess.Board()
            for m in moves[:-1]:
                board.push_uci(m)
            try:
                legal = chess.Move.from_uci(out["missing move"]) in board.legal_moves
            except ValueError:
                legal = False
            playable, unplayable = playable + legal, unplayable + (not legal)
        elif row["KIND"] == "FIND_NEXT_BEST_MOVE":
            assert set(out) == {"next best move"} and "?" not in moves
        elif row["KIND"] == "FIND_FINAL_SCORE":
            assert out["score"] in ("1-0", "0-1", "1/2-1/2")
    assert playable > 10 and unplayable >= 1


def test_chartqa_schema(root):
    from datasets import ClassLabel, Dataset, Image, List, Value

    data = Dataset.from_parquet(str(dataset_dir(root, build.CHARTQA) / "data" / "test-00000-of-00001.parquet"))
    assert data.features["image"] == Image() and data.features["label"] == List(Value("string"))
    assert data.features["human_or_machine"] == ClassLabel(names=["human", "machine"])
    assert data[0]["image"].size[0] > 100 and isinstance(data[0]["label"][0], str)


def test_docvqa_schema(root):
    from datasets import Dataset, Image, List, Value

    shards = sorted((dataset_dir(root, build.DOCVQA) / "DocVQA").glob("validation-*.parquet"))
    assert len(shards) == 2
    data = Dataset.from_parquet([str(s) for s in shards])
    assert data.column_names == ["questionId", "question", "question_types", "image", "docId", "ucsf_document_id",
                                 "ucsf_document_page_no", "answers", "data_split"]
    assert data.features["image"] == Image() and data.features["answers"] == List(Value("string"))
    assert data.features["docId"] == Value("int64") and all(row["answers"] for row in data)


def test_mathvista_schema(root):
    from datasets import Dataset, Image

    data = Dataset.from_parquet(str(dataset_dir(root, build.MATHVISTA) / "data" / "testmini-00000-of-00001.parquet"))
    assert data.features["decoded_image"] == Image() and set(data.features["metadata"]) >= {"skills", "source"}
    for row in data:
        assert row["query"].startswith("Hint: ") and "\nQuestion: " in row["query"]
        if row["question_type"] == "multi_choice":
            assert row["answer"] in row["choices"] and "\nChoices:\n(A) " in row["query"]
        else:
            assert row["choices"] is None
        if row["answer_type"] == "float":
            assert len(row["answer"].split(".")[1]) == int(row["precision"])


def test_mmlu_schema_and_few_shot_rows(root):
    from collections import Counter

    from datasets import ClassLabel, Dataset

    path = dataset_dir(root, build.MMLU)
    test = Dataset.from_parquet(str(path / "all" / "test-00000-of-00001.parquet"))
    dev = Dataset.from_parquet(str(path / "all" / "dev-00000-of-00001.parquet"))
    assert test.features["answer"] == ClassLabel(names=["A", "B", "C", "D"])
    assert set(test["subject"]) == set(build.MMLU_SUBJECTS) and len(build.MMLU_SUBJECTS) == 57
    assert set(Counter(dev["subject"]).values()) == {5}
    assert (path / "abstract_algebra" / "test-00000-of-00001.parquet").is_file()


# ------------------------------------------------------------------------------------------------ real sizes


def test_full_mode_reads_no_more_than_the_real_splits_hold():
    for (repo, config, split), n in build.full_mode_needs(1.0).items():
        real = build.MMLU_MIN_TEST_PER_SUBJECT if config == "all" and split == "test" else \
            build.MMLU_DEV_PER_SUBJECT if config == "all" and split == "dev" else build.REAL_ROWS[(repo, config, split)]
        assert n <= real, (repo, config, split, n, real)


def test_chess_test_split_has_enough_scoreable_positions():
    from gemma_helpers import chess, env

    assert set(build.CHESS_MOVE_KINDS) == set(chess.MOVE_KINDS)  # the loader scores the KINDs the stand-in counts
    settings = env.build_config(env.FULL, has_cuda=False, scale=1.0).chess
    scoreable = sum(build.CHESS_KIND_SHARES[k] for k in chess.MOVE_KINDS)
    assert build.REAL_ROWS[(build.CHESS, "default", "test")] * scoreable >= settings.eval_positions


# ------------------------------------------------------------------------------------------------ released tokenizer

RELEASED_CONFIG_KEYS = {  # google/gemma-3-1b-it's tokenizer_config.json (SOURCES.md)
    "add_bos_token", "add_eos_token", "added_tokens_decoder", "boi_token", "bos_token", "chat_template",
    "clean_up_tokenization_spaces", "eoi_token", "eos_token", "extra_special_tokens", "image_token",
    "model_max_length", "pad_token", "processor_class", "sp_model_kwargs", "spaces_between_special_tokens",
    "tokenizer_class", "unk_token", "use_default_system_prompt"}


@pytest.mark.parametrize("repo", [*build.TEXT_MODELS, *build.VISION_MODELS])
def test_every_model_repo_carries_the_released_tokenizer_files_byte_for_byte(root, repo):
    from gemma_helpers.tokenizer_files import vocabulary_shape

    released = load_script("scripts/hub_standin/released_tokenizer.py", "released_tokenizer")
    folder = model_dir(root, repo)
    for name, (size, digest) in released.RELEASED.items():
        data = (folder / name).read_bytes()
        assert (len(data), released.sha256(data)) == (size, digest), (repo, name)
    shape = vocabulary_shape(folder)
    assert shape["entries"] == 262_145 and shape["max_id"] == 262_144  # 262,144 pieces + <image_soft_token>
    assert shape["sentencepiece_pieces"] == 262_144 and shape["added_tokens"] == {"<image_soft_token>": 262_144}
    assert shape["special_ids"] == {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<start_of_turn>": 105,
                                    "<end_of_turn>": 106, "<start_of_image>": 255_999, "<end_of_image>": 256_000,
                                    "<image_soft_token>": 262_144}
    assert {"added_tokens.json", "special_tokens_map.json", "tokenizer.json", "tokenizer.model",
            "tokenizer_config.json"} <= set(shape["files"])
    assert set(json.loads((folder / "tokenizer_config.json").read_text())) == RELEASED_CONFIG_KEYS


def test_a_fine_tune_of_the_released_layout_exports_only_with_the_bases_sentencepiece_file(root, tmp_path):
    """transformers 5 saves tokenizer.json alone: llama.cpp's converter would then assert on the 262,145th id.
    The export refuses that folder with the fix named; a save that carries the base's files exports as Google's."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gemma_helpers import export, gguf_files, train

    base = model_dir(root, "unsloth/gemma-3-270m-it")
    model, tokenizer = AutoModelForCausalLM.from_pretrained(base), AutoTokenizer.from_pretrained(base)
    plain = tmp_path / "plain"
    model.save_pretrained(plain)
    tokenizer.save_pretrained(plain)
    assert not (plain / "tokenizer.model").exists()
    with pytest.raises(gguf_files.TokenizerFilesError, match="262,145 ids for a vocab_size of 262,144"):
        export.export_gguf(plain, tmp_path / "plain-gguf", ("f16",))
    carried = train.save_merged(model, tokenizer, tmp_path / "merged", dtype="float32", base=str(base))
    assert (carried / "tokenizer.model").read_bytes() == (base / "tokenizer.model").read_bytes()
    info = gguf_files.read_gguf(export.export_gguf(carried, tmp_path / "merged-gguf", ("f16",),
                                                   hub_id="unsloth/gemma-3-270m-it")["f16"].path)
    assert info.metadata["tokenizer.ggml.model"] == "llama" and info.metadata["tokenizer.ggml.tokens"] == \
        "<array of 262144>"  # the SentencePiece path, <image_soft_token> dropped as llama.cpp does
    assert info.name == "Gemma 3 270M IT"
    assert info.metadata["general.base_model.0.repo_url"] == "https://huggingface.co/unsloth/gemma-3-270m-it"
