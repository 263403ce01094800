"""Notebook 03's exercises (03_finetune_chess_270m): scoring a chess model.

Each check's reference answer comes from the lesson's own code, imported below; the checking, the hints
and both languages are :mod:`gemma_helpers.exercises.core`'s.
"""

from __future__ import annotations

from typing import Any

from ..chess import UCI_MOVE, parse_move, score
from ..chess_game import position_example
from .core import _close, _number, _t, exercise

_AFTER_E4 = "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1"
_AFTER_E5 = "rnbqkbnr/pppp1ppp/8/4p3/4P3/8/PPPP1PPP/RNBQKBNR w KQkq - 0 2"
_ITALIAN = "r1bqkb1r/pppp1ppp/2n2n2/4p3/2B1P3/5N2/PPPP1PPP/RNBQK2R w KQkq - 4 4"
START = "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1"
LEGAL_RATE_CASES = [  # (position, the model's answer)
    (START, "e2e4"), (START, "Nf3"), (_AFTER_E4, "e7e5"), (_AFTER_E4, "d2d4"),
    (_AFTER_E5, "I would play g1f3, then d2d4"), (_AFTER_E5, "e4e5 or g1f3"), (_ITALIAN, "e1g1"),
]


@exercise("03", hint=("for each answer: is its first UCI move legal for the side to move in that position?",
                      "对每个答案：它的第一步 UCI 着法在该局面下对轮到走棋的一方是否合法？"))
def check_legal_rate(answer: Any) -> tuple[bool, str]:
    """The legal-move rate of the answers in exercises.LEGAL_RATE_CASES, as chess.score computes it."""
    value = _number(answer)
    if value is None or not 0 <= value <= 1:
        return False, _t("give the rate as a fraction between 0 and 1 (what chess.score reports), not a count or a %",
                         "请把比率写成 0 到 1 之间的小数（即 `chess.score` 报告的值），不要写个数或百分数")
    examples = [position_example(fen) for fen, _ in LEGAL_RATE_CASES]
    ref = score(examples, [a for _, a in LEGAL_RATE_CASES]).legal_rate
    if _close(value, ref, rel=0.01):
        return True, _t(f"{ref:.3f}: the same rule as chess.score (parse_move) applies to every answer",
                        f"{ref:.3f}：每个答案都按与 `chess.score`（`parse_move`）相同的规则判定")
    if value > ref:
        return False, _t("too high: some answers you counted are not legal moves as parse_move reads them. It reads "
                         "UCI only (from-square, to-square), takes the first move in the reply and no other, and the "
                         "move must be one the side to move can play",
                         "太高了：你算进去的答案中，有些按 `parse_move` 的读法并不是合法着法。它只读 UCI（起始格、"
                         "目标格），只取回复中的第一步着法，而且这步必须是轮到走棋的一方能走的")
    return False, _t("too low: some answers you rejected hold a legal move. parse_move finds the first UCI move "
                     "anywhere in the reply, words around it do not matter, and castling is written as the king's "
                     "move",
                     "太低了：你排除的答案中，有些包含合法着法。`parse_move` 会在回复的任何位置找到第一步 UCI 着法，"
                     "周围的文字无关紧要，而王车易位写成王的走法")


PROMOTION_FEN = "4k3/P7/8/8/8/8/8/4K3 w - - 0 1"  # White's pawn on a7 is one step from promotion


@exercise("03", hint=("UCI is from-square, to-square, and for a promotion...?",
                      "UCI 是起始格、目标格，而升变时还要……？"))
def check_promotion_uci(answer: Any) -> tuple[bool, str]:
    """An answer the lesson's parser reads as promoting the pawn of exercises.PROMOTION_FEN to a queen."""
    import chess

    text = str(answer).strip()
    move = parse_move(PROMOTION_FEN, text)
    if move is not None and chess.Move.from_uci(move).promotion == chess.QUEEN:
        return True, _t(f"{move}: from-square, to-square, and the new piece as a lower-case letter",
                        f"{move}：起始格、目标格，再加上用小写字母表示的新棋子")
    if move is not None:
        return False, _t("that promotes the pawn to another piece: which letter names the queen?",
                         "这把兵升变成了别的棋子：哪个字母代表后？")
    if UCI_MOVE.search(text.lower()) and not UCI_MOVE.search(text):
        return False, _t("UCI writes its squares and the promotion piece in lower case", "UCI 的格子和升变棋子都用小写字母")
    if "=" in text or text[:1].isupper():
        return False, _t("that is SAN, the notation of chess books; the lesson's parser reads UCI (from-square, "
                         "to-square)", "这是 SAN，即棋书上的记谱法；本课的解析器读的是 UCI（起始格、目标格）")
    if UCI_MOVE.search(text):
        return False, _t("that move is not legal here: a pawn reaching the last rank must become a piece, and UCI "
                         "names it with a fifth letter",
                         "这步在这里不合法：走到底线的兵必须变成一个棋子，而 UCI 用第五个字母写出它")
    return False, _t("write the pawn's move in UCI: from-square, to-square, then the piece it becomes",
                     "用 UCI 写出兵的着法：起始格、目标格，然后是它变成的棋子")
