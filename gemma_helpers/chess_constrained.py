"""Legal by construction: the model chooses only among the position's legal moves (beside learned legality).

The lesson measures whether a model *learned* to answer with a legal move. Here legality is built in instead, so
what remains to measure is the choice: is the model's favourite legal move a good one?

* **Answer text.** A candidate move is written exactly as the example's own answer writes its move: the reference
  move inside ``example.answer`` is replaced by the candidate (``{"next best move": "e2e4"}`` stays JSON in full
  mode, a bare ``e2e4`` in the smoke lesson; a game position without an answer gets the bare UCI move). So
  :func:`gemma_helpers.chess.parse_move` and :func:`gemma_helpers.chess.score` read a constrained answer unchanged.
* **transformers** (:func:`rank_legal_moves`, :func:`constrained_answers`): each legal move's answer text plus
  ``<end_of_turn>`` (id 106), tokenized as training tokenizes an answer (:func:`gemma_helpers.train.tokenize_rows`),
  is scored by the model's summed log-probability after the lesson's prompt; the best is the answer. The end of
  turn counts, so ``e7e8`` cannot win over ``e7e8q`` for being shorter (and here ``e7e8`` is no legal move at all).
  Why ranking rather than generation restricted to a trie of the legal answers' tokens: ranking is exact (the
  probability of the whole answer, not a greedy walk that can commit to a prefix whose completions are poor), it
  has no tokenizer-boundary issues (the trie would have to allow every tokenization of each text, or silently
  forbid the ones the model prefers), and it costs one batched forward pass over all candidates (a position has
  ~20-40 legal moves), no decoding loop. Candidates go in chunks of ``batch_size``, right-padded with an attention
  mask, and the vocabulary's log-softmax is taken only at the continuation's positions (``logits_to_keep``).
* **llama.cpp** (:func:`legal_move_grammar`, :func:`gguf_constrained_answers`): a GBNF grammar whose only strings
  are the legal answers; llama.cpp then samples (greedily) only tokens that keep the reply inside it.
* :func:`time_answers`: milliseconds per move of any ``answer_fn``, to put the cost of each mode side by side.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager

from .chess import ChessExample
from .llamacpp import import_llama_cpp
from .prompts import END_OF_TURN, chat_prompt

# ------------------------------------------------------------------------------------------------- answers


def legal_moves(example: ChessExample) -> list[str]:
    """The legal moves of the side to move in the example's position, UCI, sorted (promotions with their letter)."""
    import chess

    return sorted(m.uci() for m in chess.Board(example.fen).legal_moves)


def answer_text(example: ChessExample, move: str) -> str:
    """The answer the example would give with `move`: its reference move replaced (bare UCI when it has none)."""
    where = example.answer.find(example.move) if example.move else -1
    if where < 0:
        return move
    return (example.answer[:where] + move + example.answer[where + len(example.move):]).strip()


def answer_texts(example: ChessExample) -> dict[str, str]:
    """{legal move: its answer text} for the example's position."""
    return {move: answer_text(example, move) for move in legal_moves(example)}


# -------------------------------------------------------------------------------------------- transformers


def continuation_ids(tokenizer, text: str) -> list[int]:
    """The tokens the model writes for an answer: the text and <end_of_turn>, tokenized as training does."""
    return tokenizer(text.strip() + END_OF_TURN, add_special_tokens=False)["input_ids"]


def prompt_ids(tokenizer, example: ChessExample) -> list[int]:
    """The lesson's prompt for the example (chat_prompt with <bos>), tokenized as generation does."""
    return tokenizer(chat_prompt(example.conversation(with_answer=False)), add_special_tokens=False)["input_ids"]


@contextmanager
def _scoring(model):
    """Eval mode (no LoRA dropout) and a contiguous input for the LM head (see chess.generate_answers), undone."""
    was_training = model.training
    head = model.get_output_embeddings()
    hook = head.register_forward_pre_hook(lambda _, args: (args[0].contiguous(), *args[1:])) if head else None
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
        if hook is not None:
            hook.remove()


def continuation_logprobs(model, prompt: Sequence[int], continuations: Sequence[Sequence[int]],
                          pad_id: int = 0) -> list[float]:
    """Summed log-probability of each continuation after the prompt, in one right-padded batch.

    Position P-1+j (P: prompt length) predicts the continuation's token j; only those C positions (C: the longest
    continuation) reach the LM head, so memory is batch x C x vocab, not batch x sequence x vocab.
    """
    import torch

    n, longest = len(prompt), max(len(c) for c in continuations)
    ids = torch.full((len(continuations), n + longest), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    targets = torch.zeros((len(continuations), longest), dtype=torch.long)
    keep = torch.zeros((len(continuations), longest))
    for i, cont in enumerate(continuations):
        ids[i, :n + len(cont)] = torch.tensor([*prompt, *cont])
        mask[i, :n + len(cont)] = 1
        targets[i, :len(cont)], keep[i, :len(cont)] = torch.tensor(cont), 1.0
    device = model.device
    with torch.no_grad():  # the last token's prediction is never needed: feed all but it
        out = model(input_ids=ids[:, :-1].to(device), attention_mask=mask[:, :-1].to(device),
                    logits_to_keep=longest, use_cache=False)
    logits = out.logits[:, -longest:].float()  # also right if a model ignored logits_to_keep
    picked = torch.log_softmax(logits, dim=-1).gather(-1, targets.to(logits.device)[..., None]).squeeze(-1)
    return (picked * keep.to(logits.device)).sum(-1).tolist()


def prompt_caches(model, prompts: Sequence[Sequence[int]], pad_id: int = 0):
    """(log-probabilities of the token after each prompt [B, vocab], the prompts' key/value cache, their attention
    mask [B, P]): one forward pass over the prompts, left-padded into one batch, whose cache every candidate
    continuation then reuses (:func:`continuation_logprobs_cached`). Positions count from each prompt's own first
    token, so a padded prompt sees what it would see alone."""
    import torch

    longest = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), longest), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, prompt in enumerate(prompts):
        ids[i, longest - len(prompt):] = torch.tensor(list(prompt))
        mask[i, longest - len(prompt):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    device = model.device
    with torch.no_grad():
        out = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                    use_cache=True, logits_to_keep=1)
    return torch.log_softmax(out.logits[:, -1].float(), dim=-1), out.past_key_values, mask


def continuation_logprobs_cached(model, cached, owners: Sequence[int], continuations: Sequence[Sequence[int]],
                                 pad_id: int = 0) -> list[float]:
    """The same sums as :func:`continuation_logprobs`, each prompt computed once: ``cached`` is what
    :func:`prompt_caches` returned, and continuation i follows prompt ``owners[i]``.

    A prompt's last position predicts its candidates' first tokens; the candidates' other tokens, of every prompt,
    run as one right-padded batch on the prompts' cache, each row a copy of its own prompt's. A position has ~20-40
    legal moves of ~3-6 tokens after a ~200-token prompt, so this feeds the model about 15x fewer tokens than
    recomputing the prompt with each candidate, and a batch of positions one forward pass instead of one each
    (``tests`` check that the sums agree with the uncached path, one position at a time and several at once)."""
    import copy

    import torch

    first, cache, prompt_mask = cached
    totals = [float(first[o, c[0]]) for o, c in zip(owners, continuations, strict=True)]
    longest = max(len(c) for c in continuations)
    if longest == 1:
        return totals
    b, rows = len(continuations), torch.tensor(list(owners), dtype=torch.long)
    lengths = prompt_mask.sum(-1)
    ids = torch.full((b, longest - 1), pad_id, dtype=torch.long)
    mask = torch.cat([prompt_mask[rows], torch.zeros((b, longest - 1), dtype=torch.long)], dim=-1)
    n = prompt_mask.shape[1]
    targets = torch.zeros((b, longest - 1), dtype=torch.long)
    keep = torch.zeros((b, longest - 1))
    for i, cont in enumerate(continuations):
        ids[i, :len(cont) - 1] = torch.tensor(cont[:-1])
        mask[i, n:n + len(cont) - 1] = 1
        targets[i, :len(cont) - 1], keep[i, :len(cont) - 1] = torch.tensor(cont[1:]), 1.0
    positions = lengths[rows][:, None] + torch.arange(longest - 1)[None, :]
    batch_cache = copy.deepcopy(cache)
    batch_cache.batch_select_indices(rows.to(model.device))
    device = model.device
    with torch.no_grad():
        out = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                    past_key_values=batch_cache, use_cache=True)
    logits = out.logits.float()
    picked = torch.log_softmax(logits, dim=-1).gather(-1, targets.to(logits.device)[..., None]).squeeze(-1)
    rest = (picked * keep.to(logits.device)).sum(-1).tolist()
    return [t + r for t, r in zip(totals, rest, strict=True)]


POSITIONS_PER_BATCH = 16  # prompts in one forward pass: ~16 x 200 tokens, and their cache ~60 MB for the 270M


def rank_many(model, tokenizer, examples: Sequence[ChessExample], batch_size: int = 64,
              positions_per_batch: int = POSITIONS_PER_BATCH) -> list[list[tuple[str, float]]]:
    """Per example, every legal move with the model's log-probability of its answer text (and <end_of_turn>), best
    first; the prompts of ``positions_per_batch`` examples go in one forward pass and all their candidates in chunks
    of ``batch_size`` (the games of a match, a batch of held-out positions: one pass for all, not one each)."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ranked: list[list[tuple[str, float]]] = []
    with _scoring(model):
        for start in range(0, len(examples), positions_per_batch):
            group = examples[start:start + positions_per_batch]
            texts = [answer_texts(ex) for ex in group]
            live = [i for i, t in enumerate(texts) if t]  # a finished game has no legal move to rank
            scores: dict[int, list[float]] = {i: [] for i in live}
            if live:
                cached = prompt_caches(model, [prompt_ids(tokenizer, group[i]) for i in live], pad_id)
                pairs = [(row, i, m) for row, i in enumerate(live) for m in texts[i]]
                for at in range(0, len(pairs), batch_size):
                    chunk = pairs[at:at + batch_size]
                    sums = continuation_logprobs_cached(
                        model, cached, [row for row, _, _ in chunk],
                        [continuation_ids(tokenizer, texts[i][m]) for _, i, m in chunk], pad_id)
                    for (_, i, _), value in zip(chunk, sums, strict=True):
                        scores[i].append(value)
            ranked += [sorted(zip(t, scores.get(i, []), strict=True), key=lambda ms: (-ms[1], ms[0]))
                       for i, t in enumerate(texts)]
    return ranked


def rank_legal_moves(model, tokenizer, example: ChessExample, batch_size: int = 64,
                     reuse_prompt: bool = True) -> list[tuple[str, float]]:
    """Every legal move with the model's log-probability of its answer text (and <end_of_turn>), best first
    (``reuse_prompt``: the prompt's cache computed once and shared by the candidates, :func:`rank_many`; False
    recomputes the prompt with each candidate, the plain path the cached one is checked against)."""
    if reuse_prompt:
        return rank_many(model, tokenizer, [example], batch_size)[0]
    texts = answer_texts(example)
    if not texts:
        return []
    prompt = prompt_ids(tokenizer, example)
    moves = list(texts)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    scores: list[float] = []
    with _scoring(model):
        for start in range(0, len(moves), batch_size):
            chunk = [continuation_ids(tokenizer, texts[m]) for m in moves[start:start + batch_size]]
            scores += continuation_logprobs(model, prompt, chunk, pad_id)
    return sorted(zip(moves, scores, strict=True), key=lambda ms: (-ms[1], ms[0]))


def constrained_answers(model, tokenizer, examples: Sequence[ChessExample], batch_size: int = 64) -> list[str]:
    """Per example, the answer text of its best-ranked legal move ("" where the game is over), the examples ranked
    together (:func:`rank_many`)."""
    return [answer_text(ex, ranked[0][0]) if ranked else ""
            for ex, ranked in zip(examples, rank_many(model, tokenizer, examples, batch_size), strict=True)]


# ----------------------------------------------------------------------------------------------- llama.cpp


def gbnf_literal(text: str) -> str:
    """A GBNF string literal for text: backslash, quote and control characters escaped."""
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return '"' + "".join(escapes.get(c, c if c.isprintable() else f"\\x{ord(c):02X}") for c in text) + '"'


def legal_move_grammar(example: ChessExample) -> str:
    """A GBNF grammar accepting exactly the answer texts of the position's legal moves, one alternative a line."""
    texts = sorted(set(answer_texts(example).values()))
    if not texts:
        raise ValueError(f"no legal move in {example.fen}: the game is over, there is nothing to constrain")
    return "root ::= " + " |\n    ".join(gbnf_literal(t) for t in texts) + "\n"  # a newline may follow "|" only


def grammar_parses(llm, grammar: str) -> bool:
    """Whether llama.cpp parses the grammar for this model (LlamaGrammar.from_string only stores the text, and a
    grammar that fails to parse crashes the process at generation)."""
    import llama_cpp

    sampler = llama_cpp.llama_sampler_init_grammar(llama_cpp.llama_model_get_vocab(llm.model), grammar.encode(),
                                                   b"root")
    if not sampler:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True


def answer_token_bound(example: ChessExample) -> int:
    """Enough new tokens for any legal answer however it is tokenized: its bytes, and one for <end_of_turn>."""
    return max(len(t.encode()) for t in answer_texts(example).values()) + 1


def gguf_constrained_answers(llm, examples: Sequence[ChessExample], max_new_tokens: int | None = None) -> list[str]:
    """Greedy llama.cpp replies held to :func:`legal_move_grammar`; max_new_tokens is raised to
    :func:`answer_token_bound` where it is smaller (a cut answer would be no move)."""
    grammar_type = import_llama_cpp().LlamaGrammar
    answers = []
    for ex in examples:
        if not legal_moves(ex):
            answers.append("")
            continue
        text = legal_move_grammar(ex)
        if not grammar_parses(llm, text):
            raise ValueError(f"llama.cpp does not parse the grammar for {ex.fen}:\n{text}")
        grammar = grammar_type.from_string(text, verbose=False)
        budget = max(max_new_tokens or 0, answer_token_bound(ex))
        out = llm.create_chat_completion(messages=ex.conversation(with_answer=False), grammar=grammar,
                                         max_tokens=budget, temperature=0.0, top_k=1, seed=0)
        answers.append((out["choices"][0]["message"]["content"] or "").strip())
    return answers


# ---------------------------------------------------------------------------------------------------- cost


def time_answers(answer_fn: Callable[[Sequence[ChessExample]], list[str]], examples: Sequence[ChessExample],
                 warmup: bool = True) -> float:
    """Milliseconds per move: answer_fn asked one position at a time, as in a game (one untimed call first)."""
    if not examples:
        raise ValueError("no examples to time")
    if warmup:
        answer_fn([examples[0]])
    started = time.perf_counter()
    for ex in examples:
        answer_fn([ex])
    return 1000 * (time.perf_counter() - started) / len(examples)
