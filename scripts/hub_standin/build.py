"""Build the content of the local Hugging Face Hub stand-in: tiny models under the real ids, datasets with real schemas.

Full mode loads ``unsloth/gemma-3-*`` models and five datasets from the hub. CI cannot reach the hub, so it serves
this folder instead (``serve.py``), and the real loading code runs unchanged against it::

    ROOT/models/<owner>/<name>/...      config.json, model.safetensors, generation_config.json, tokenizer, processor
    ROOT/datasets/<owner>/<name>/...    README.md (YAML configs where the real repo has them) and the data files

Models are randomly initialised (seeded) at a tiny width, but keep the real architecture classes, the real
vocabulary, special-token ids, attention pattern, rope settings and image geometry, and carry the released Gemma 3
tokenizer files byte for byte (``released_tokenizer.py``: tokenizer.model, tokenizer.json with 262,145 entries,
tokenizer_config.json, special_tokens_map.json, added_tokens.json; never the embedded model's own conversion). Datasets keep the real file paths, configs, split names,
column names, feature types and answer formats; their rows are made up here (legal chess games from python-chess,
charts, documents and diagrams drawn with PIL). Every fact and its source is in ``SOURCES.md`` next to this file.

Usage: ``python scripts/hub_standin/build.py ROOT [--rows-scale X] [--force]``. ``--rows-scale 1`` gives full mode
every row it asks for (never more than the real split holds); CI uses a small scale. A stamp in ROOT makes a second
run with the same builder version and scale a no-op.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script: make gemma_helpers importable without installing it
    sys.path.insert(0, str(REPO))

BUILDER_VERSION = 2  # bump on any change to what is built, so stale stand-ins are rebuilt
STAMP = "standin.json"
SEED = 3407

CHESS, CHARTQA, DOCVQA, MATHVISTA, MMLU = ("Thytu/ChessInstruct", "HuggingFaceM4/ChartQA", "lmms-lab/DocVQA",
                                           "AI4Math/MathVista", "cais/mmlu")

# (repo, config, split) -> rows in the real split, from the dataset cards (SOURCES.md says where each number is from).
# ChessInstruct's card gives no counts: ours are derived from its generator's settings (99% / 1% of 100,000 rows).
REAL_ROWS: dict[tuple[str, str, str], int] = {
    (CHESS, "default", "train"): 99_000,
    (CHESS, "default", "test"): 1_000,
    (CHARTQA, "default", "train"): 28_299,
    (CHARTQA, "default", "val"): 1_920,
    (CHARTQA, "default", "test"): 2_500,
    (DOCVQA, "DocVQA", "validation"): 5_349,
    (DOCVQA, "DocVQA", "test"): 5_188,
    (MATHVISTA, "default", "testmini"): 1_000,
    (MATHVISTA, "default", "test"): 5_141,
    (MMLU, "all", "test"): 14_042,
    (MMLU, "all", "validation"): 1_531,
    (MMLU, "all", "dev"): 285,
    (MMLU, "all", "auxiliary_train"): 99_842,
}
MMLU_MIN_TEST_PER_SUBJECT = 100  # every MMLU subject has at least 100 test questions (Hendrycks et al., 2021)
MMLU_DEV_PER_SUBJECT = 5  # the dev split holds exactly 5 few-shot examples per subject (285 = 57 x 5)

MMLU_SUBJECTS = (
    "abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge", "college_biology",
    "college_chemistry", "college_computer_science", "college_mathematics", "college_medicine", "college_physics",
    "computer_security", "conceptual_physics", "econometrics", "electrical_engineering", "elementary_mathematics",
    "formal_logic", "global_facts", "high_school_biology", "high_school_chemistry", "high_school_computer_science",
    "high_school_european_history", "high_school_geography", "high_school_government_and_politics",
    "high_school_macroeconomics", "high_school_mathematics", "high_school_microeconomics", "high_school_physics",
    "high_school_psychology", "high_school_statistics", "high_school_us_history", "high_school_world_history",
    "human_aging", "human_sexuality", "international_law", "jurisprudence", "logical_fallacies", "machine_learning",
    "management", "marketing", "medical_genetics", "miscellaneous", "moral_disputes", "moral_scenarios", "nutrition",
    "philosophy", "prehistory", "professional_accounting", "professional_law", "professional_medicine",
    "professional_psychology", "public_relations", "security_studies", "sociology", "us_foreign_policy", "virology",
    "world_religions",
)
UNUSED_SPLIT_ROWS = 20  # rows (at scale 1) of splits that full mode never reads but the real repo has


# ------------------------------------------------------------------------------------------------ row counts


def full_mode_needs(scale: float = 1.0) -> dict[tuple[str, str, str], int]:
    """Rows full mode reads from each split at a GEMMA_FULL_SCALE, from ``build_config(FULL)`` (MMLU: per subject)."""
    from gemma_helpers import env

    cfg = env.build_config(env.FULL, "hub stand-in", has_cuda=False, scale=scale)
    scored = sum(CHESS_KIND_SHARES[k] for k in CHESS_MOVE_KINDS)
    return {
        # chess.build_dataset: the first train_rows usable rows, then test rows until eval_positions one-move rows
        (CHESS, "default", "train"): math.ceil(cfg.chess.train_rows * (1 + UNPLAYABLE_SHARE)) + 2,
        (CHESS, "default", "test"): math.ceil((cfg.chess.eval_positions + 3) / scored * 1.1),
        (CHARTQA, "default", "test"): max(cfg.vision.chartqa_items, cfg.bench.vision_items),
        (DOCVQA, "DocVQA", "validation"): cfg.bench.vision_items,
        (MATHVISTA, "default", "testmini"): cfg.bench.vision_items,
        (MMLU, "all", "test"): cfg.bench.mmlu_per_subject,
        (MMLU, "all", "dev"): cfg.bench.mmlu_shots,
    }


def rows_for(key: tuple[str, str, str], scale: float, per_subject: bool = False) -> int:
    """Rows to build for a split: what full mode reads at this scale (a few for unread splits), capped at the real size.

    The scale is the one full mode runs at (GEMMA_FULL_SCALE), so the counts come with env's floors."""
    if per_subject and key[2] == "dev":
        return MMLU_DEV_PER_SUBJECT  # few-shot prompts need all five at any scale
    need = full_mode_needs(scale).get(key) or max(2, math.ceil(UNUSED_SPLIT_ROWS * scale))
    real = REAL_ROWS[key] // (len(MMLU_SUBJECTS) if per_subject else 1)
    if per_subject and key[2] == "test":
        real = MMLU_MIN_TEST_PER_SUBJECT
    return min(need, real)


# ------------------------------------------------------------------------------------------------ models

TEXT_MODELS = ("unsloth/gemma-3-270m-it", "unsloth/gemma-3-1b-it")
VISION_MODELS = ("unsloth/gemma-3-4b-it", "unsloth/gemma-3-4b-pt")
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 1, "head_dim": 32, "query_pre_attn_scalar": 32,
        "layer_types": ["sliding_attention", "full_attention"]}  # the real 5:1 pattern, shortened to one of each
BOI, EOI, IMAGE_TOKEN = "<start_of_image>", "<end_of_image>", "<image_soft_token>"
BOI_ID, EOI_ID, IMAGE_TOKEN_ID = 255_999, 256_000, 262_144
REAL_IMAGE_SIZE, REAL_PATCH, REAL_MM_TOKENS = 896, 14, 256
# Like the real generation_config.json of the instruction-tuned checkpoints: stop on <eos> (1) and <end_of_turn> (106).
IT_GENERATION = {"bos_token_id": 2, "pad_token_id": 0, "eos_token_id": [1, 106], "do_sample": True, "top_k": 64,
                 "top_p": 0.95, "cache_implementation": "hybrid"}
PT_GENERATION = {"bos_token_id": 2, "pad_token_id": 0, "eos_token_id": 1, "cache_implementation": "hybrid"}
REAL_PREPROCESSOR = {  # google/gemma-3-4b-it preprocessor_config.json, key for key
    "do_convert_rgb": None, "do_normalize": True, "do_pan_and_scan": None, "do_rescale": True, "do_resize": True,
    "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "image_processor_type": "Gemma3ImageProcessor",
    "image_seq_length": REAL_MM_TOKENS, "pan_and_scan_max_num_crops": None, "pan_and_scan_min_crop_size": None,
    "pan_and_scan_min_ratio_to_activate": None, "processor_class": "Gemma3Processor", "resample": 2,
    "rescale_factor": 1 / 255, "size": {"height": REAL_IMAGE_SIZE, "width": REAL_IMAGE_SIZE}}


def released_tokenizer_dir() -> Path:
    """The released Gemma 3 tokenizer files (released_tokenizer.py: fetched once, each checked by its hash)."""
    from scripts.hub_standin.released_tokenizer import released_tokenizer_dir as fetch

    return fetch()


def _link_released_tokenizer(tokenizer_src: Path, out: Path, shared: dict[str, Path]) -> None:
    """The five released tokenizer files into a model repo, replacing whatever save_pretrained wrote there."""
    from scripts.hub_standin.released_tokenizer import RELEASED

    for name in RELEASED:
        _link_or_copy(shared.setdefault(name, tokenizer_src / name), out / name)


def _text_config(vocab_size: int, max_positions: int, sliding_window: int, rope_scaling: dict | None):
    from transformers import Gemma3TextConfig

    rope = {"full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0}}
    if rope_scaling:
        rope["full_attention"] = {**rope_scaling, "rope_theta": 1_000_000.0}
    return Gemma3TextConfig(vocab_size=vocab_size, max_position_embeddings=max_positions, sliding_window=sliding_window,
                            rope_parameters=rope, rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh",
                            bos_token_id=2, eos_token_id=1, pad_token_id=0, attention_bias=False,
                            final_logit_softcapping=None, attn_logit_softcapping=None, tie_word_embeddings=True,
                            **TINY)


def _write_generation_config(out: Path, values: dict) -> None:
    data = dict(values, transformers_version=_transformers_version())
    (out / "generation_config.json").write_text(json.dumps(data, indent=2) + "\n")


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link when possible: the 33 MB tokenizer.json is then stored once for all stand-ins sharing it."""
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def build_text_model(repo: str, out: Path, tokenizer_src: Path, shared: dict[str, Path], seed: int) -> None:
    """A tiny Gemma3ForCausalLM under a 270M / 1B id: real vocabulary, 32K context, sliding + global layers."""
    import torch
    from transformers import Gemma3ForCausalLM

    torch.manual_seed(seed)
    config = _text_config(262_144, 32_768, 512, None)
    config.architectures = ["Gemma3ForCausalLM"]
    model = Gemma3ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out)
    _write_generation_config(out, IT_GENERATION)
    _link_released_tokenizer(tokenizer_src, out, shared)


def vision_processor(tokenizer_src: Path):
    """A Gemma3Processor with the released tokenizer (<image_soft_token> at id 262144) and the real 896 px geometry."""
    from transformers import AutoTokenizer, Gemma3Processor
    from transformers.models.gemma3 import Gemma3ImageProcessorPil  # the default one needs torchvision

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_src)
    ids = tokenizer.convert_tokens_to_ids([BOI, EOI, IMAGE_TOKEN])
    if ids != [BOI_ID, EOI_ID, IMAGE_TOKEN_ID]:
        raise RuntimeError(f"image token ids are {ids}, the real ones are {[BOI_ID, EOI_ID, IMAGE_TOKEN_ID]}")
    image_processor = Gemma3ImageProcessorPil(size={"height": REAL_IMAGE_SIZE, "width": REAL_IMAGE_SIZE},
                                              image_mean=[0.5] * 3, image_std=[0.5] * 3, resample=2)
    return Gemma3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_length=REAL_MM_TOKENS,
                           chat_template=tokenizer.chat_template)


def build_vision_model(repo: str, out: Path, processor, seed: int, tokenizer_src: Path,
                       shared: dict[str, Path]) -> None:
    """A tiny Gemma3ForConditionalGeneration under a 4B id: one-layer SigLIP at the real 896 px / 14 px / 256 tokens."""
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, SiglipVisionConfig

    torch.manual_seed(seed)
    text = _text_config(262_208, 131_072, 1024, {"rope_type": "linear", "factor": 8.0})
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                image_size=REAL_IMAGE_SIZE, patch_size=REAL_PATCH, layer_norm_eps=1e-6,
                                vision_use_head=False)
    config = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=REAL_MM_TOKENS,
                          boi_token_index=BOI_ID, eoi_token_index=EOI_ID, image_token_index=IMAGE_TOKEN_ID,
                          initializer_range=0.02)
    config.architectures = ["Gemma3ForConditionalGeneration"]
    model = Gemma3ForConditionalGeneration(config).to(torch.bfloat16)
    model.save_pretrained(out)
    _write_generation_config(out, IT_GENERATION if repo.endswith("-it") else PT_GENERATION)
    processor.save_pretrained(out)
    # transformers 5 folds the image processor into processor_config.json; the real repos keep the older two files,
    # with the real type name "Gemma3ImageProcessor" (which resolves to the PIL processor when torchvision is absent).
    (out / "preprocessor_config.json").write_text(json.dumps(REAL_PREPROCESSOR, indent=2) + "\n")
    (out / "processor_config.json").write_text(json.dumps(
        {"image_seq_length": REAL_MM_TOKENS, "processor_class": "Gemma3Processor"}, indent=2) + "\n")
    _link_released_tokenizer(tokenizer_src, out, shared)  # the released bytes, not save_pretrained's rewrite


def build_models(root: Path) -> dict[str, int]:
    """All four model stand-ins; returns bytes per repo."""
    tokenizer_src = released_tokenizer_dir()
    sizes, shared = {}, {}
    for i, repo in enumerate(TEXT_MODELS):
        out = root / "models" / repo
        out.mkdir(parents=True, exist_ok=True)
        build_text_model(repo, out, tokenizer_src, shared, SEED + i)
        sizes[repo] = _folder_bytes(out)
    processor = vision_processor(tokenizer_src)
    for i, repo in enumerate(VISION_MODELS):
        out = root / "models" / repo
        out.mkdir(parents=True, exist_ok=True)
        build_vision_model(repo, out, processor, SEED + 10 + i, tokenizer_src, shared)
        sizes[repo] = _folder_bytes(out)
    return sizes


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------------ dataset writing


def _png(image) -> dict[str, Any]:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return {"bytes": buf.getvalue(), "path": None}


def write_split(path: Path, rows: list[dict[str, Any]], features) -> None:
    """Write rows as one parquet file with the datasets schema embedded (as push_to_hub does)."""
    from datasets import Dataset

    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {name: [r[name] for r in rows] for name in features}
    Dataset.from_dict(columns, features=features).to_parquet(str(path))


def write_card(repo_dir: Path, header: dict[str, Any], title: str, body: str) -> None:
    """README.md: YAML front matter (dataset_info and configs, as the real card declares them), then a short note."""
    import yaml

    text = "---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n\n# " + title + "\n\n" + body.strip() + "\n"
    (repo_dir / "README.md").write_text(text)


def dataset_info(features, splits: dict[str, int], config: str | None = None) -> dict[str, Any]:
    """A card's dataset_info entry: features in the card's YAML form, the stand-in's split sizes (datasets checks them)."""
    info: dict[str, Any] = {"config_name": config} if config else {}
    info["features"] = features._to_yaml_list()
    info["splits"] = [{"name": name, "num_examples": n} for name, n in splits.items()]
    return info


STANDIN_NOTE = ("A stand-in built by `scripts/hub_standin/build.py` for the offline full-mode rehearsal: the real "
                "repository's files, configs, splits, columns and types, with made-up rows. See SOURCES.md.")


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return ImageFont.load_default()


# ------------------------------------------------------------------------------------------------ ChessInstruct

CHESS_TASKS = {  # KIND -> our wording of the task (the real wordings differ; the answer formats are the real ones)
    "FIND_LAST_MOVE": "Given an incomplete list of chess moves in UCI notation, the last one replaced by \"?\", and "
                      "the game's result, write the missing last move.\nOutput Format: {\"missing move\": \"<uci>\"}",
    "FIND_NEXT_BEST_MOVE": "Given the chess moves played so far in UCI notation, write the best move for the player "
                           "to move.\nOutput Format: {\"next best move\": \"<uci>\"}",
    "MLM_ON_MOVES": "Given a chess game in UCI notation where some moves were replaced by \"?\", its final position "
                    "and result, write the missing moves in order.\nOutput Format: {\"missing moves\": [\"<uci>\"]}",
    "FIND_FINAL_SCORE": "Given every move of a chess game in UCI notation, give the final score of the game.\n"
                        "Output Format: {\"score\": \"1-0\" | \"0-1\" | \"1/2-1/2\"}",
    "FIND_ADVANTAGED_PLAYER": "Given the chess moves played so far in UCI notation, name the player who currently "
                              "has the advantage.\nOutput Format: {\"Most advantaged\": \"White\" | \"Black\"}",
    "SORT_FENS": "Given a list of board positions (the piece-placement field of FEN), sort them from the earliest to "
                 "the latest in the game.\nOutput Format: {\"sorted FENs\": \"[<fen>, ...]\"}",
}
# Shares of the six tasks in the real data, from the generator's sample counts (15k/20k/15k/20k/10k/20k of 100k).
CHESS_KIND_SHARES = {"FIND_LAST_MOVE": 0.15, "FIND_FINAL_SCORE": 0.20, "MLM_ON_MOVES": 0.15,
                     "FIND_ADVANTAGED_PLAYER": 0.20, "SORT_FENS": 0.10, "FIND_NEXT_BEST_MOVE": 0.20}
UNPLAYABLE_SHARE = 0.005  # rows whose expected move is illegal where it is asked: the loader must skip and count them
CHESS_MOVE_KINDS = ("FIND_LAST_MOVE", "FIND_NEXT_BEST_MOVE")  # the KINDs whose answer is one move to score
PIECE_VALUES = {1: 1, 2: 3, 3: 3, 4: 5, 5: 9, 6: 0}


def random_game(rng: random.Random, max_plies: int) -> tuple[list[str], str]:
    """A legal game (UCI moves) that prefers captures and checks, and its result string."""
    import chess

    board = chess.Board()
    moves: list[str] = []
    while len(moves) < max_plies and not board.is_game_over(claim_draw=False):
        legal = list(board.legal_moves)
        forcing = [m for m in legal if board.is_capture(m) or board.gives_check(m)]
        move = rng.choice(forcing if forcing and rng.random() < 0.5 else legal)
        moves.append(move.uci())
        board.push(move)
    outcome = board.outcome()
    if outcome is not None:
        result = outcome.result()
    else:
        result = rng.choice(["1-0", "0-1", "1/2-1/2"])  # a resignation or an agreed draw
    return moves, result


def _material(board) -> int:
    score = 0
    for piece_type, value in PIECE_VALUES.items():
        score += value * (len(board.pieces(piece_type, True)) - len(board.pieces(piece_type, False)))
    return score


def _board_after(moves: Sequence[str]):
    import chess

    board = chess.Board()
    for m in moves:
        board.push_uci(m)
    return board


def chess_row(kind: str, game: list[str], result: str, rng: random.Random, unplayable: bool) -> dict[str, str]:
    """One ChessInstruct row of a KIND, built from a game; input and expected_output are JSON strings, as in the CSV."""
    import chess

    cut = rng.randint(min(6, len(game) - 1), len(game) - 1)
    if kind == "FIND_LAST_MOVE":
        moves, answer = game[:cut], game[cut]
        if unplayable:  # a move that is not legal after moves[:cut] (the rook's square to itself is never legal)
            answer = "a1a1" if rng.random() < 0.5 else _illegal_move(_board_after(moves))
        inp, out = {"moves": [*moves, "?"], "result": result}, {"missing move": answer}
    elif kind == "FIND_NEXT_BEST_MOVE":
        if rng.random() < 0.02 and _board_after(game).is_game_over():
            cut = len(game)  # the game is over: the real data answers "chess mate" here
        board = _board_after(game[:cut])
        legal = list(board.legal_moves)
        best = max(legal, key=lambda m: (board.is_capture(m), board.gives_check(m), rng.random())).uci() \
            if legal else "chess mate"
        if unplayable and legal:
            best = _illegal_move(board)
        inp, out = {"moves": game[:cut]}, {"next best move": best}
    elif kind == "MLM_ON_MOVES":
        hidden = sorted(rng.sample(range(len(game)), k=min(len(game), rng.randint(1, 3))))
        moves = ["?" if i in hidden else m for i, m in enumerate(game)]
        missing = [game[i] for i in hidden]
        inp = {"moves": moves, "FEN": _board_after(game).fen(), "result": result}
        out = {"missing moves": missing}
    elif kind == "FIND_FINAL_SCORE":
        inp, out = {"moves": game}, {"score": result}
    elif kind == "FIND_ADVANTAGED_PLAYER":
        board = _board_after(game[:cut])
        inp, out = {"moves": game[:cut]}, {"Most advantaged": "White" if _material(board) >= 0 else "Black"}
    elif kind == "SORT_FENS":
        boards, board = [], chess.Board()
        for m in game:
            board.push_uci(m)
            boards.append(board.board_fen())
        picked = sorted(rng.sample(range(len(boards)), k=min(5, len(boards))))
        shuffled = [boards[i] for i in picked]
        rng.shuffle(shuffled)
        inp, out = {"FENs": shuffled}, {"sorted FENs": "[" + ", ".join(boards[i] for i in picked) + "]"}
    else:
        raise ValueError(f"unknown KIND {kind!r}")
    return {"task": CHESS_TASKS[kind], "input": json.dumps(inp), "expected_output": json.dumps(out), "KIND": kind}


def _illegal_move(board) -> str:
    """A well-formed UCI move that is not legal in the position (a square to a far, empty, unreachable square)."""
    import chess

    legal = {m.uci() for m in board.legal_moves}
    for frm in chess.SQUARES:
        for to in chess.SQUARES:
            uci = chess.square_name(frm) + chess.square_name(to)
            if frm != to and uci not in legal and board.piece_at(frm) is None:
                return uci
    return "a1a1"


def build_chess(repo_dir: Path, scale: float) -> dict[str, int]:
    """train.csv and test.csv at the repo root (the real layout), rows of all six KINDs in the real shares."""
    import csv

    rng = random.Random(SEED)
    counts = {}
    pool = [random_game(rng, rng.randint(24, 90)) for _ in range(60 + int(400 * scale))]
    for split in ("train", "test"):
        n = rows_for((CHESS, "default", split), scale)
        kinds = [k for k, share in CHESS_KIND_SHARES.items() for _ in range(round(share * n))]
        kinds = (kinds + ["FIND_LAST_MOVE"] * n)[:n]
        rng.shuffle(kinds)  # the real merge concatenates task blocks; shuffled here so any prefix has every KIND
        # at least one unplayable row of each scored KIND, about UNPLAYABLE_SHARE of the rows in all
        bad = {rng.choice([i for i, k in enumerate(kinds) if k == kind]) for kind in CHESS_MOVE_KINDS}
        bad |= set(rng.sample(range(n), k=round(UNPLAYABLE_SHARE * n)))
        bad = {i for i in bad if kinds[i] in CHESS_MOVE_KINDS}
        rows = [chess_row(k, *rng.choice(pool), rng, i in bad) for i, k in enumerate(kinds)]
        with (repo_dir / f"{split}.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["task", "input", "expected_output", "KIND"])
            writer.writeheader()
            writer.writerows(rows)
        counts[split] = n
    header = {"license": "cc-by-4.0", "task_categories": ["text-generation"], "language": ["en"],
              "pretty_name": "Chess Instruct", "size_categories": ["10K<n<100K"]}
    write_card(repo_dir, header, "ChessInstruct (stand-in)", STANDIN_NOTE + "\n\nColumns: task, input (JSON), "
               "expected_output (JSON), KIND. No `configs:`: like the real card, splits come from the file names.")
    return counts


# ------------------------------------------------------------------------------------------------ ChartQA

CHART_LABELS = ("Asia", "Europe", "Africa", "Oceania", "Americas", "2016", "2017", "2018", "2019", "2020", "Q1", "Q2",
                "Q3", "Q4", "Men", "Women", "Urban", "Rural", "Online", "Retail")
CHART_TITLES = ("Share of adults who use the internet, %", "Annual revenue in million U.S. dollars",
                "Number of visitors (in thousands)", "Unemployment rate by region, %", "Average price in euros")


def draw_bar_chart(rng: random.Random, size: tuple[int, int] = (480, 360)):
    """A bar chart with value labels; returns (image, title, labels, values)."""
    from PIL import Image, ImageDraw

    k = rng.randint(3, 6)
    labels = rng.sample(CHART_LABELS, k)
    values = [round(rng.uniform(2, 95), rng.choice([0, 1])) for _ in labels]
    title = rng.choice(CHART_TITLES)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.text((12, 8), title, fill="black", font=_font(15))
    w, h = size
    top, bottom, left = 40, h - 40, 30
    slot = (w - 2 * left) / k
    color = rng.choice(["#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e"])
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x0 = left + i * slot + slot * 0.15
        y0 = bottom - (bottom - top) * value / 100
        draw.rectangle([x0, y0, x0 + slot * 0.7, bottom], fill=color)
        draw.text((x0, y0 - 16), f"{value:g}", fill="black", font=_font(13))
        draw.text((x0, bottom + 6), label, fill="black", font=_font(13))
    draw.line([left, bottom, w - left, bottom], fill="black")
    return image, title, labels, values


def chart_question(rng: random.Random, labels: list[str], values: list[float]) -> tuple[str, str]:
    """(query, answer) in ChartQA's styles: a value look-up, an extremum, a difference, a yes/no comparison."""
    i, j = rng.sample(range(len(labels)), 2)
    style = rng.randrange(4)
    if style == 0:
        return f"What is the value of {labels[i]}?", f"{values[i]:g}"
    if style == 1:
        return "Which category has the highest value?", labels[max(range(len(values)), key=values.__getitem__)]
    if style == 2:
        return f"What is the difference between {labels[i]} and {labels[j]}?", f"{round(abs(values[i] - values[j]), 1):g}"
    return f"Is the value of {labels[i]} greater than {labels[j]}?", "Yes" if values[i] > values[j] else "No"


def build_chartqa(repo_dir: Path, scale: float) -> dict[str, int]:
    """data/{train,val,test}-00000-of-00001.parquet: image, query, label (list of strings), human_or_machine."""
    from datasets import ClassLabel, Features, Image, List, Value

    features = Features({"image": Image(), "query": Value("string"), "label": List(Value("string")),
                         "human_or_machine": ClassLabel(names=["human", "machine"])})
    rng = random.Random(SEED + 1)
    counts = {}
    for split in ("train", "val", "test"):
        n = rows_for((CHARTQA, "default", split), scale)
        rows = []
        for _ in range(n):
            image, _, labels, values = draw_bar_chart(rng)
            query, answer = chart_question(rng, labels, values)
            rows.append({"image": _png(image), "query": query, "label": [answer], "human_or_machine": rng.randrange(2)})
        write_split(repo_dir / "data" / f"{split}-00000-of-00001.parquet", rows, features)
        counts[split] = n
    header = {"dataset_info": dataset_info(features, counts), "license": "gpl-3.0",
              "configs": [{"config_name": "default", "data_files": [
                  {"split": s, "path": f"data/{s}-*"} for s in ("train", "val", "test")]}]}
    write_card(repo_dir, header, "ChartQA (stand-in)", STANDIN_NOTE)
    return counts


# ------------------------------------------------------------------------------------------------ DocVQA

DOC_NAMES = ("Dr. R. A. Harmon", "J. W. Tate", "Mary Ellen Ruiz", "T. K. Okafor", "Linda Chu", "P. S. Brennan")
DOC_COMPANIES = ("Brown & Williamson", "R.J. Reynolds Tobacco Co.", "Great Western Sugar", "Nutrition Foundation",
                 "Pharmacia Research", "Lorillard Corporation")
DOC_SUBJECTS = ("Quarterly budget review", "Sample shipment", "Research proposal", "Meeting minutes",
                "Product test results", "Travel expenses")


def draw_document(rng: random.Random) -> tuple[Any, list[tuple[str, list[str], list[str]]]]:
    """A memo page (grayscale, like a scan) and its questions: (question, answers, question_types)."""
    from PIL import Image, ImageDraw

    month, day, year = rng.randint(1, 12), rng.randint(1, 28), rng.randint(60, 99)
    date = f"{month:02d}/{day:02d}/{year}"
    to, sender = rng.sample(DOC_NAMES, 2)
    company, subject = rng.choice(DOC_COMPANIES), rng.choice(DOC_SUBJECTS)
    amount = f"${rng.randint(100, 99_999):,}.{rng.randint(0, 99):02d}"
    page = rng.randint(1, 9)
    image = Image.new("L", (620, 800), 245)
    draw = ImageDraw.Draw(image)
    draw.text((40, 30), company.upper(), fill=20, font=_font(20))
    draw.text((40, 70), "MEMORANDUM", fill=20, font=_font(24))
    for k, (field, value) in enumerate((("DATE:", date), ("TO:", to), ("FROM:", sender), ("SUBJECT:", subject),
                                        ("TOTAL:", amount))):
        draw.text((40, 130 + 34 * k), field, fill=30, font=_font(16))
        draw.text((150, 130 + 34 * k), value, fill=30, font=_font(16))
    for line in range(12):
        draw.line([40, 340 + 28 * line, 40 + rng.randint(300, 540), 340 + 28 * line], fill=120, width=2)
    draw.text((290, 760), f"Page {page}", fill=30, font=_font(14))
    questions = [
        ("What is the date mentioned in this memo?", [date], ["layout"]),
        ("To whom is this memo addressed?", [to, to.split()[-1]], ["form"]),
        ("Who is the sender of this memo?", [sender], ["form"]),
        ("What is the subject of the memo?", [subject, subject.lower()], ["layout", "form"]),
        ("What is the total amount?", [amount, amount.lstrip("$")], ["form", "table/list"]),
        ("What is the page number?", [str(page)], ["layout"]),
    ]
    return image, rng.sample(questions, 3)


def build_docvqa(repo_dir: Path, scale: float) -> dict[str, int]:
    """Config DocVQA: DocVQA/{validation,test}-*.parquet (validation in two shards, so streaming crosses a file)."""
    from datasets import Features, Image, List, Value

    features = Features({"questionId": Value("string"), "question": Value("string"),
                         "question_types": List(Value("string")), "image": Image(), "docId": Value("int64"),
                         "ucsf_document_id": Value("string"), "ucsf_document_page_no": Value("string"),
                         "answers": List(Value("string")), "data_split": Value("string")})
    rng = random.Random(SEED + 2)
    counts, qid, doc = {}, 49_153, 14_465
    for split in ("validation", "test"):
        n = rows_for((DOCVQA, "DocVQA", split), scale)
        rows: list[dict[str, Any]] = []
        while len(rows) < n:
            image, questions = draw_document(rng)
            png, ucsf = _png(image), "".join(rng.choice("bcdfghjklmnpqrstvwxyz") for _ in range(4)) + \
                f"{rng.randint(0, 9999):04d}"
            doc += rng.randint(1, 9)
            for question, answers, types in questions[: n - len(rows)]:
                qid += rng.randint(1, 40)
                test = split == "test"  # the test split's answers are withheld (as on the real card)
                rows.append({"questionId": str(qid), "question": question, "question_types": None if test else types,
                             "image": png, "docId": doc, "ucsf_document_id": ucsf, "ucsf_document_page_no": "1",
                             "answers": None if test else answers, "data_split": "val" if split == "validation"
                             else "test"})
        shards = 2 if split == "validation" and n >= 2 else 1
        cut = math.ceil(n / shards)
        for s in range(shards):
            write_split(repo_dir / "DocVQA" / f"{split}-{s:05d}-of-{shards:05d}.parquet", rows[s * cut:(s + 1) * cut],
                        features)
        counts[split] = n
    header = {"license": "apache-2.0", "dataset_info": dataset_info(features, counts, "DocVQA"),
              "configs": [{"config_name": "DocVQA", "data_files": [
                  {"split": s, "path": f"DocVQA/{s}-*"} for s in ("validation", "test")]}]}
    write_card(repo_dir, header, "DocVQA (stand-in)", STANDIN_NOTE + "\n\nThe real repository also has an "
               "InfographicVQA config, which the curriculum does not read; it is left out here.")
    return counts


# ------------------------------------------------------------------------------------------------ MathVista

MATHVISTA_HINTS = {  # the 'query' column's hint line, per answer kind (MathVista's own prompt format)
    "multi_choice": "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, "
                    "at the end.",
    "integer": "Hint: Please answer the question requiring an integer answer and provide the final value, "
               "e.g., 1, 2, 3, at the end.",
    "float1": "Hint: Please answer the question requiring a floating-point number with one decimal place and "
              "provide the final value, e.g., 1.2, 1.3, 1.4, at the end.",
    "float2": "Hint: Please answer the question requiring a floating-point number with two decimal places and "
              "provide the final value, e.g., 1.23, 1.34, 1.45, at the end.",
    "list": "Hint: Please answer the question requiring a Python list as an answer and provide the final list, "
            "e.g., [1, 2, 3], [1.2, 1.3, 1.4], at the end.",
}


def mathvista_query(question: str, kind: str, choices: Sequence[str] | None) -> str:
    """The 'query' text: hint line, question, and for choice questions the options as (A) ..., (B) ..."""
    text = f"{MATHVISTA_HINTS[kind]}\nQuestion: {question}"
    if choices:
        text += "\nChoices:\n" + "\n".join(f"({chr(65 + i)}) {c}" for i, c in enumerate(choices))
    return text


def math_item(rng: random.Random, pid: int) -> dict[str, Any]:
    """One MathVista-shaped item: a drawn figure, its question in each of the real answer kinds, its metadata."""
    from PIL import Image, ImageDraw

    kind = rng.choice(["multi_choice", "multi_choice", "integer", "integer", "float1", "float2", "list"])
    size = rng.choice([(360, 300), (420, 320), (300, 300)])
    image = Image.new(rng.choice(["RGB", "RGBA"]), size, "white")
    draw = ImageDraw.Draw(image)
    choices, unit, precision = None, None, None
    if kind == "integer":  # a triangle with two angles given
        a, b = rng.randint(30, 80), rng.randint(30, 80)
        draw.polygon([(40, size[1] - 40), (size[0] - 40, size[1] - 40), (size[0] // 2, 40)], outline="black")
        draw.text((50, size[1] - 70), f"{a}°", fill="black", font=_font(16))
        draw.text((size[0] - 90, size[1] - 70), f"{b}°", fill="black", font=_font(16))
        draw.text((size[0] // 2 - 6, 60), "x", fill="black", font=_font(16))
        question, answer, answer_type = "Find the measure of angle x.", str(180 - a - b), "integer"
        meta = ("math-targeted-vqa", "geometry diagram", "high school", ["geometry reasoning", "algebraic reasoning"],
                "Geometry3K", "geometry problem solving")
    elif kind in ("float1", "float2"):  # a rectangle with its sides
        w, h = round(rng.uniform(2, 9), 1), round(rng.uniform(2, 9), 1)
        draw.rectangle([60, 60, size[0] - 60, size[1] - 60], outline="black", width=2)
        draw.text((size[0] // 2 - 20, size[1] - 55), f"{w} cm", fill="black", font=_font(16))
        draw.text((10, size[1] // 2), f"{h} cm", fill="black", font=_font(16))
        digits = 1 if kind == "float1" else 2
        question = "What is the area of the rectangle?" if digits == 1 else "What is the ratio of the width to the height?"
        value = w * h if digits == 1 else w / h
        answer, answer_type, precision = f"{value:.{digits}f}", "float", float(digits)
        unit = "cm²" if digits == 1 else None
        meta = ("math-targeted-vqa", "geometry diagram", "elementary school", ["geometry reasoning",
                "arithmetic reasoning"], "GeoQA+", "geometry problem solving")
    else:  # a bar chart: which bar is tallest (choices), or all values (list)
        k = rng.randint(3, 4)
        labels = rng.sample(["apple", "pear", "plum", "fig", "kiwi", "lime"], k)
        values = [rng.randint(1, 9) for _ in labels]
        for i, v in enumerate(values):
            x0 = 40 + i * 70
            draw.rectangle([x0, size[1] - 40 - 25 * v, x0 + 45, size[1] - 40], fill="#4477aa")
            draw.text((x0, size[1] - 30), labels[i], fill="black", font=_font(13))
        if kind == "list":
            question, answer, answer_type = "List the bar values from left to right.", str(values), "list"
            meta = ("math-targeted-vqa", "bar chart", "daily life", ["statistical reasoning"], "FigureQA",
                    "figure question answering")
        else:
            top = max(range(k), key=lambda i: (values[i], -i))
            question, choices, answer, answer_type = "Which fruit has the tallest bar?", labels, labels[top], "text"
            meta = ("general-vqa", "bar chart", "daily life", ["statistical reasoning"], "FigureQA",
                    "figure question answering")
    category, context, grade, skills, source, task = meta
    qtype = "multi_choice" if choices else "free_form"
    return {"pid": str(pid), "question": question, "image": f"images/{pid}.jpg", "decoded_image": _png(image),
            "choices": choices, "unit": unit, "precision": precision, "answer": answer, "question_type": qtype,
            "answer_type": answer_type, "query": mathvista_query(question, kind, choices),
            "metadata": {"category": category, "context": context, "grade": grade, "img_height": size[1],
                         "img_width": size[0], "language": "english", "skills": skills, "source": source,
                         "split": "testmini", "task": task}}


def build_mathvista(repo_dir: Path, scale: float) -> dict[str, int]:
    """data/{testmini,test}-00000-of-00001.parquet with the real columns (metadata as a struct)."""
    from datasets import Features, Image, List, Value

    features = Features({
        "pid": Value("string"), "question": Value("string"), "image": Value("string"), "decoded_image": Image(),
        "choices": List(Value("string")), "unit": Value("string"), "precision": Value("float64"),
        "answer": Value("string"), "question_type": Value("string"), "answer_type": Value("string"),
        "metadata": {"category": Value("string"), "context": Value("string"), "grade": Value("string"),
                     "img_height": Value("int64"), "img_width": Value("int64"), "language": Value("string"),
                     "skills": List(Value("string")), "source": Value("string"), "split": Value("string"),
                     "task": Value("string")},
        "query": Value("string")})
    rng = random.Random(SEED + 3)
    counts, pid = {}, 1
    for split in ("testmini", "test"):
        n = rows_for((MATHVISTA, "default", split), scale)
        rows = []
        for _ in range(n):
            row = math_item(rng, pid)
            if split == "test":  # test answers are not released
                row["answer"], row["metadata"]["split"] = "", "test"
            rows.append(row)
            pid += 1
        write_split(repo_dir / "data" / f"{split}-00000-of-00001.parquet", rows, features)
        counts[split] = n
    header = {"license": "cc-by-sa-4.0", "configs": [{"config_name": "default", "data_files": [
        {"split": s, "path": f"data/{s}-*"} for s in ("testmini", "test")]}],
        "dataset_info": dataset_info(features, counts)}
    write_card(repo_dir, header, "MathVista (stand-in)", STANDIN_NOTE)
    return counts


# ------------------------------------------------------------------------------------------------ MMLU


def mmlu_row(rng: random.Random, subject: str, k: int) -> dict[str, Any]:
    """A four-choice arithmetic question filed under a subject, its answer index spread evenly over A-D."""
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    correct = a + b
    wrong = rng.sample([correct + d for d in (-11, -10, -2, -1, 1, 2, 9, 10) if correct + d > 0], 3)
    answer = k % 4
    choices = wrong[:answer] + [correct] + wrong[answer:]
    topic = subject.replace("_", " ")
    return {"question": f"In a {topic} exercise, a total is formed from {a} and {b}. What is the total?",
            "subject": subject, "choices": [str(c) for c in choices], "answer": answer}


def build_mmlu(repo_dir: Path, scale: float) -> dict[str, int]:
    """Config all ({test,validation,dev,auxiliary_train}) and one config per subject ({test,validation,dev})."""
    from datasets import ClassLabel, Features, List, Value

    features = Features({"question": Value("string"), "subject": Value("string"),
                         "choices": List(Value("string")), "answer": ClassLabel(names=["A", "B", "C", "D"])})
    rng = random.Random(SEED + 4)
    per = {s: rows_for((MMLU, "all", s), scale, per_subject=True) for s in ("test", "validation", "dev")}
    everything: dict[str, list[dict]] = {s: [] for s in per}
    infos, configs = [], []
    for subject in MMLU_SUBJECTS:
        split_rows = {s: [mmlu_row(rng, subject, k) for k in range(n)] for s, n in per.items()}
        for s, rows in split_rows.items():
            write_split(repo_dir / subject / f"{s}-00000-of-00001.parquet", rows, features)
            everything[s].extend(rows)
        infos.append(dataset_info(features, {s: len(r) for s, r in split_rows.items()}, subject))
        configs.append({"config_name": subject, "data_files": [{"split": s, "path": f"{subject}/{s}-*"} for s in per]})
    n_aux = rows_for((MMLU, "all", "auxiliary_train"), scale)
    everything["auxiliary_train"] = [dict(mmlu_row(rng, "miscellaneous", k), subject="") for k in range(n_aux)]
    for s, rows in everything.items():
        write_split(repo_dir / "all" / f"{s}-00000-of-00001.parquet", rows, features)
    counts = {s: len(r) for s, r in everything.items()}
    infos.append(dataset_info(features, counts, "all"))
    configs.append({"config_name": "all", "data_files": [{"split": s, "path": f"all/{s}-*"} for s in everything]})
    header = {"language": ["en"], "license": "mit", "pretty_name": "Measuring Massive Multitask Language "
              "Understanding", "dataset_info": infos, "configs": sorted(configs, key=lambda c: c["config_name"])}
    write_card(repo_dir, header, "MMLU (stand-in)", STANDIN_NOTE + "\n\nThe real repository's separate "
               "`auxiliary_train` config (a different schema) is left out; `all` keeps its auxiliary_train split.")
    return counts


DATASETS: dict[str, Callable[[Path, float], dict[str, int]]] = {
    CHESS: build_chess, CHARTQA: build_chartqa, DOCVQA: build_docvqa, MATHVISTA: build_mathvista, MMLU: build_mmlu}


# ------------------------------------------------------------------------------------------------ the build


def read_stamp(root: Path) -> dict[str, Any] | None:
    """The stamp of a finished build in ROOT, or None."""
    try:
        return json.loads((root / STAMP).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def build(root: Path, rows_scale: float = 1.0, force: bool = False) -> dict[str, Any]:
    """Build the stand-in into ROOT (skipped when ROOT holds a stamp of this builder version and scale)."""
    if rows_scale <= 0:
        raise ValueError(f"--rows-scale must be positive, not {rows_scale}")
    root = Path(root)
    stamp = read_stamp(root)
    if not force and stamp and stamp.get("builder_version") == BUILDER_VERSION and \
            stamp.get("rows_scale") == rows_scale:
        return stamp
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    started = time.perf_counter()
    # Built beside ROOT, then swapped in: a server reading ROOT never sees half a stand-in.
    work = root.with_name(f".{root.name}.partial-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    timings, rows = {}, {}
    t = time.perf_counter()
    model_bytes = build_models(work)
    timings["models"] = round(time.perf_counter() - t, 1)
    for repo, builder in DATASETS.items():
        t = time.perf_counter()
        out = work / "datasets" / repo
        out.mkdir(parents=True, exist_ok=True)
        rows[repo] = builder(out, rows_scale)
        timings[repo] = round(time.perf_counter() - t, 1)
    short = {f"{r}/{c}/{s}": {"needed": n, "real": REAL_ROWS[(r, c, s)]}
             for (r, c, s), n in full_mode_needs(1.0).items() if c != "all" and n > REAL_ROWS[(r, c, s)]}
    stamp = {"builder_version": BUILDER_VERSION, "rows_scale": rows_scale, "seed": SEED, "rows": rows,
             "model_bytes": model_bytes, "seconds": timings, "total_seconds": round(time.perf_counter() - started, 1),
             "full_mode_needs_more_than_real": short}
    (work / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    if root.exists():
        shutil.rmtree(root)
    work.rename(root)
    return stamp


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build ROOT at a row scale and print the stamp."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="folder to build (models/ and datasets/ go inside)")
    parser.add_argument("--rows-scale", type=float, default=1.0,
                        help="the GEMMA_FULL_SCALE full mode will run at (1.0: every row it reads; CI: 0.05)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the stamp matches")
    args = parser.parse_args(argv)
    stamp = build(args.root, args.rows_scale, args.force)
    print(json.dumps(stamp, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
