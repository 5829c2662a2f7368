#!/usr/bin/env python3
"""The official `openai` Python client against bitnet-server, every route, streamed
and not, with real values asserted. Run by `make test-openai` (which makes the venv):

    python tools/test_openai_client.py [--server PATH] [--model PATH]

Starts the server on 127.0.0.1 with a free port on the shipped Shakespeare model
(real byte-level BPE tokenizer; no chat template, so chat messages are joined as
plain text), with an API key, and stops it at the end whatever happens."""

import argparse
import json
import math
import os
import sys
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in tools/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_harness  # noqa: E402

import openai  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "openai-client-test-key"
checks = 0


def check(condition, what):
    global checks
    checks += 1
    if not condition:
        raise AssertionError(what)


def http(url, body=None, key=KEY):
    """Plain HTTP: (status, parsed JSON or text)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default=serve_harness.default_binary(ROOT))
    ap.add_argument("--model", default=os.path.join(ROOT, "Sources/BitNetCLI/Resources/bitnet-shakespeare-i2_s.gguf"))
    args = ap.parse_args()
    started = time.time()
    server = serve_harness.Server(args.server, args.model, ["--parallel", "2", "--api-key", KEY, "--threads", "2"])
    try:
        run(server, os.path.basename(args.model))
    finally:
        rc = server.stop()
    check(rc == 0, f"the server stops cleanly on SIGTERM (exit status {rc})")
    print(f"openai client test: {checks} checks passed in {time.time() - started:.1f} s "
          f"(openai {openai.__version__})")


def run(server, model_name):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=60)
    prompt = "KING HENRY.\nNow, lords, "

    # GET /v1/models
    models = client.models.list()
    check([m.id for m in models.data] == [model_name], f"models list names the model: {models.data}")

    # /health, /ready, /tokenize, /detokenize (plain HTTP; llama-server's shapes)
    check(http(server.url + "/health", key=None) == (200, {"status": "ok"}), "/health answers ok without a key")
    status, _ = http(server.url + "/ready", key=None)
    check(status == 200, f"/ready is 200 when slots are free (got {status})")
    status, tok = http(server.url + "/tokenize", {"content": prompt, "add_special": True})
    check(status == 200 and all(isinstance(t, int) for t in tok["tokens"]), f"/tokenize: {tok}")
    ids = tok["tokens"]
    status, plain = http(server.url + "/tokenize", {"content": prompt})
    check(len(plain["tokens"]) in (len(ids), len(ids) - 1), "add_special adds at most BOS")
    status, detok = http(server.url + "/detokenize", {"tokens": plain["tokens"]})
    check(status == 200 and detok["content"] == prompt, f"/detokenize round-trips the prompt: {detok!r}")
    status, err = http(server.url + "/tokenize", {"content": "x"}, key="wrong")
    check(status == 401, f"a wrong key gets 401 (got {status})")

    # completions, not streamed: greedy, max_tokens -> length, usage
    c = client.completions.create(model=model_name, prompt=prompt, max_tokens=24, temperature=0)
    text = c.choices[0].text
    check(c.object == "text_completion" and c.id.startswith("cmpl-"), f"completion object: {c.object} {c.id}")
    check(len(text) > 10, f"a completion has text: {text!r}")
    check(c.choices[0].finish_reason == "length", f"max_tokens ends with length: {c.choices[0].finish_reason}")
    check(c.usage.completion_tokens == 24, f"usage.completion_tokens = max_tokens: {c.usage}")
    check(c.usage.prompt_tokens == len(ids), f"usage.prompt_tokens {c.usage.prompt_tokens} = /tokenize's {len(ids)}")
    check(c.usage.total_tokens == len(ids) + 24, f"usage.total_tokens: {c.usage}")
    again = client.completions.create(model=model_name, prompt=prompt, max_tokens=24, temperature=0)
    check(again.choices[0].text == text, "greedy is deterministic")

    # completions, streamed, with include_usage: the same text piece by piece
    chunks = list(client.completions.create(model=model_name, prompt=prompt, max_tokens=24, temperature=0,
                                            stream=True, stream_options={"include_usage": True}))
    streamed = "".join(ch.choices[0].text for ch in chunks if ch.choices)
    check(streamed == text, f"the stream joins to the same text: {streamed!r} vs {text!r}")
    check(sum(1 for ch in chunks if ch.choices and ch.choices[0].text) > 5, "streamed in several pieces")
    finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    check(finishes == ["length"], f"one finish_reason, length: {finishes}")
    check(chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 24
          and chunks[-1].usage.prompt_tokens == len(ids), f"include_usage: a last usage chunk: {chunks[-1]}")
    check(all(ch.usage is None for ch in chunks[:-1]), "usage only in the last chunk")
    plain_stream = list(client.completions.create(model=model_name, prompt=prompt, max_tokens=4, temperature=0, stream=True))
    check(all(ch.usage is None for ch in plain_stream), "no usage chunk without include_usage")

    # stop strings: cut before the first one, finish_reason stop, streamed or not
    stop = text[8:11]
    want = text[:text.index(stop)]
    s = client.completions.create(model=model_name, prompt=prompt, max_tokens=24, temperature=0, stop=["qqqq", stop])
    check(s.choices[0].text == want and s.choices[0].finish_reason == "stop",
          f"stop {stop!r}: {s.choices[0].text!r} ({s.choices[0].finish_reason}), want {want!r}")
    ss = list(client.completions.create(model=model_name, prompt=prompt, max_tokens=24, temperature=0, stop=stop, stream=True))
    check("".join(ch.choices[0].text for ch in ss if ch.choices) == want, "a streamed stop string never leaks")
    check([ch.choices[0].finish_reason for ch in ss if ch.choices and ch.choices[0].finish_reason] == ["stop"], "stream: stop")

    # seeds reproduce; different seeds differ somewhere
    def sampled(seed):
        return client.completions.create(model=model_name, prompt=prompt, max_tokens=16, temperature=1.0, top_p=0.95,
                                         seed=seed).choices[0].text
    first = sampled(42)
    check(sampled(42) == first, "the same seed gives the same text")
    check(len({first, sampled(43), sampled(44)}) > 1, "different seeds give different texts")

    # chat, not streamed and streamed
    messages = [{"role": "system", "content": "Speak as a king."}, {"role": "user", "content": "HAMLET.\nWho art thou?\n"}]
    chat = client.chat.completions.create(model=model_name, messages=messages, max_tokens=16, temperature=0)
    reply = chat.choices[0].message
    check(chat.object == "chat.completion" and chat.id.startswith("chatcmpl-"), f"chat object: {chat.object}")
    check(reply.role == "assistant" and len(reply.content) > 0, f"chat reply: {reply}")
    check(chat.choices[0].finish_reason == "length" and chat.usage.completion_tokens == 16, f"chat usage: {chat.usage}")
    cs = list(client.chat.completions.create(model=model_name, messages=messages, max_tokens=16, temperature=0,
                                             stream=True, stream_options={"include_usage": True}))
    check(cs[0].object == "chat.completion.chunk" and cs[0].choices[0].delta.role == "assistant", "first chunk: the role")
    check("".join(ch.choices[0].delta.content or "" for ch in cs if ch.choices) == reply.content, "chat stream = chat reply")
    check(cs[-1].usage.completion_tokens == 16 and cs[-1].usage.prompt_tokens == chat.usage.prompt_tokens, "chat usage chunk")
    capped = client.chat.completions.create(model=model_name, messages=messages, max_completion_tokens=3, temperature=0)
    check(capped.usage.completion_tokens == 3 and capped.choices[0].finish_reason == "length", "max_completion_tokens")

    # logprobs, completions: tokens spell the text; greedy picks the top token; log-probabilities <= 0
    lp = client.completions.create(model=model_name, prompt=prompt, max_tokens=12, temperature=0, logprobs=3)
    l = lp.choices[0].logprobs
    check("".join(l.tokens) == lp.choices[0].text, f"logprobs tokens spell the text: {l.tokens}")
    check(len(l.tokens) == len(l.token_logprobs) == len(l.top_logprobs) == len(l.text_offset) == 12, "one entry per token")
    for i, (t, v, top) in enumerate(zip(l.tokens, l.token_logprobs, l.top_logprobs)):
        check(v <= 0 and math.isfinite(v), f"token {i}: logprob {v}")
        check(3 <= len(top) <= 4 and t in top and abs(top[t] - v) < 1e-6, f"token {i}: top {top} holds {t!r}")
        check(abs(max(top.values()) - v) < 1e-6, f"greedy token {i} is the most likely one")
    check(l.text_offset == [sum(len(x) for x in l.tokens[:i]) for i in range(12)], f"text_offset: {l.text_offset}")
    lps = list(client.completions.create(model=model_name, prompt=prompt, max_tokens=12, temperature=0, logprobs=3,
                                         stream=True))
    streamed_tokens = [t for ch in lps if ch.choices and ch.choices[0].logprobs for t in ch.choices[0].logprobs.tokens]
    streamed_values = [v for ch in lps if ch.choices and ch.choices[0].logprobs for v in ch.choices[0].logprobs.token_logprobs]
    check(streamed_tokens == l.tokens and streamed_values == l.token_logprobs, "streamed logprobs = the whole response's")
    none = client.completions.create(model=model_name, prompt=prompt, max_tokens=2)
    check(none.choices[0].logprobs is None, "no logprobs unless asked")

    # logprobs, chat: content[] with bytes and top_logprobs; the temperature does not change the numbers
    def chat_logprobs(temperature, stream=False):
        r = client.chat.completions.create(model=model_name, messages=messages, max_tokens=8, temperature=temperature,
                                           seed=9, logprobs=True, top_logprobs=2, stream=stream)
        if stream:
            return [c for ch in r if ch.choices and ch.choices[0].logprobs for c in ch.choices[0].logprobs.content]
        check(bytes(b for c in r.choices[0].logprobs.content for b in c.bytes).decode() == r.choices[0].message.content,
              "chat logprobs bytes spell the reply")
        return r.choices[0].logprobs.content
    content = chat_logprobs(0)
    check(len(content) == 8 and all(len(c.top_logprobs) == 2 for c in content), "8 tokens, 2 alternatives each")
    check(all(c.top_logprobs[0].logprob >= c.top_logprobs[1].logprob for c in content), "alternatives likeliest first")
    check(all(c.top_logprobs[0].token == c.token and c.top_logprobs[0].logprob == c.logprob for c in content),
          "greedy: the chosen token is the top alternative")
    check([(c.token, c.logprob) for c in chat_logprobs(0, stream=True)] == [(c.token, c.logprob) for c in content],
          "chat logprobs streamed = not streamed")
    hot = chat_logprobs(1.7)
    check(len(hot) == 8 and hot[0].top_logprobs == content[0].top_logprobs,
          "the first position's distribution is the model's, whatever the temperature")

    # what the server does not do, refused with a clear error
    for call, what in [
        (lambda: client.completions.create(model=model_name, prompt=prompt, max_tokens=2, n=2), "n=2 (completions)"),
        (lambda: client.chat.completions.create(model=model_name, messages=messages, max_tokens=2, n=2), "n=2 (chat)"),
    ]:
        try:
            call()
            check(False, f"{what} must be refused")
        except openai.BadRequestError as e:
            body = e.body if isinstance(e.body, dict) else {}
            message = body.get("message", "") or str(e)
            check(e.status_code == 400 and "'n'" in message and "1" in message, f"{what}: a clear 400: {message}")
    try:
        client.chat.completions.create(model=model_name, messages=messages, max_tokens=2, top_logprobs=2)
        check(False, "top_logprobs without logprobs must be refused")
    except openai.BadRequestError as e:
        check("top_logprobs" in str(e), f"top_logprobs without logprobs: {e}")
    try:
        openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0).models.list()
        check(False, "a wrong key must be refused")
    except openai.AuthenticationError as e:
        check(e.status_code == 401, "the client sees 401 for a wrong key")


if __name__ == "__main__":
    main()
