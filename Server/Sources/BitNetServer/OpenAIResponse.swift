import BitNet
import BitNetJSON
import Foundation

/// The JSON bodies of the OpenAI-compatible API: completions, chat completions,
/// their stream chunks, and the model list. `timings` follows llama.cpp's server
/// (prompt/predicted counts, milliseconds and tokens per second) plus
/// `cached_tokens`, the prompt tokens reused from the KV cache.
public struct OpenAIResponse: Sendable {
    public let kind: CompletionRequest.Kind
    /// `cmpl-…` or `chatcmpl-…`, the same in every chunk of a stream.
    public let id: String
    public let created: Int
    public let model: String

    public init(kind: CompletionRequest.Kind, model: String) {
        self.kind = kind
        self.model = model
        created = Int(Date().timeIntervalSince1970)
        let random = UInt64.random(in: 0...UInt64.max)
        let hex = String(random, radix: 16)
        id = (kind == .chat ? "chatcmpl-" : "cmpl-") + String(repeating: "0", count: 16 - hex.count) + hex
    }

    private var objectName: String { kind == .chat ? "chat.completion" : "text_completion" }
    private var chunkObjectName: String { kind == .chat ? "chat.completion.chunk" : "text_completion" }

    private func header(_ w: inout JSONWriter, object: String) {
        w.field("id", id)
        w.field("object", object)
        w.field("created", created)
        w.field("model", model)
    }

    /// How a choice carries its text: a whole message, a stream delta, or a stream's closing chunk.
    private enum Payload { case message, delta(role: Bool), closing }

    /// The one choice of a response or chunk (`finish` nil: still streaming; `logprobs` nil:
    /// not asked for, written as null).
    private func choices(_ w: inout JSONWriter, text: String, payload: Payload, finish: String?,
                         logprobs: [LogprobEntry]? = nil) {
        w.array("choices") { w in
            w.object { c in
                c.field("index", 0)
                if kind == .chat {
                    switch payload {
                    case .message:
                        c.object("message") { m in
                            m.field("role", "assistant")
                            m.field("content", text)
                        }
                    case .delta(let role):
                        c.object("delta") { d in
                            if role { d.field("role", "assistant") }
                            d.field("content", text)
                        }
                    case .closing:
                        c.object("delta") { _ in }
                    }
                } else {
                    c.field("text", text)
                }
                if let logprobs { writeLogprobs(&c, logprobs) } else { c.nullField("logprobs") }
                if let finish { c.field("finish_reason", finish) } else { c.nullField("finish_reason") }
            }
        }
    }

    /// A choice's `logprobs` in OpenAI's shape for the kind. Completions (the legacy
    /// shape): parallel arrays `tokens`, `token_logprobs`, `text_offset`, and
    /// `top_logprobs`, one `{token: logprob}` object per token holding the k most likely
    /// and the chosen token (OpenAI: "up to logprobs+1 elements"). Chat:
    /// `content`, one `{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}`
    /// per token, the list holding exactly the k most likely.
    private func writeLogprobs(_ c: inout JSONWriter, _ entries: [LogprobEntry]) {
        func alternative(_ w: inout JSONWriter, _ a: LogprobEntry.Alternative) {
            w.field("token", a.token)
            w.field("logprob", LogprobEntry.json(a.logprob))
            w.array("bytes") { b in for byte in a.bytes { b.int(Int(byte)) } }
        }
        if kind == .chat {
            c.object("logprobs") { l in
                l.array("content") { a in
                    for e in entries {
                        a.object { t in
                            alternative(&t, e.chosen)
                            t.array("top_logprobs") { tops in
                                for alt in e.top { tops.object { alternative(&$0, alt) } }
                            }
                        }
                    }
                }
                l.nullField("refusal")
            }
        } else {
            c.object("logprobs") { l in
                l.array("tokens") { a in for e in entries { a.string(e.chosen.token) } }
                l.array("token_logprobs") { a in for e in entries { a.double(LogprobEntry.json(e.chosen.logprob)) } }
                l.array("top_logprobs") { a in
                    for e in entries {
                        a.object { o in
                            var seen = Set<String>() // two ids may spell the same text: the likelier one stays
                            for alt in e.top + [e.chosen] where seen.insert(alt.token).inserted {
                                o.field(alt.token, LogprobEntry.json(alt.logprob))
                            }
                        }
                    }
                }
                l.array("text_offset") { a in for e in entries { a.int(e.textOffset) } }
            }
        }
    }

    /// The whole response of a request that was not streamed.
    public func complete(_ outcome: CompletionOutcome) -> String {
        var w = JSONWriter()
        w.object { w in
            header(&w, object: objectName)
            choices(&w, text: outcome.text, payload: .message, finish: outcome.openAIFinishReason,
                    logprobs: outcome.logprobs)
            Self.usage(&w, outcome)
            Self.timings(&w, outcome)
        }
        return w.text
    }

    /// A stream chunk carrying `text` (for chat, `role` opens the first chunk) and, when
    /// asked for, the log-probabilities of the tokens that begin in it.
    public func chunk(text: String, role: Bool = false, logprobs: [LogprobEntry]? = nil) -> String {
        var w = JSONWriter()
        w.object { w in
            header(&w, object: chunkObjectName)
            choices(&w, text: text, payload: .delta(role: role), finish: nil, logprobs: logprobs)
        }
        return w.text
    }

    /// The stream's last choice chunk: no text, the finish reason, and the timings.
    public func finalChunk(_ outcome: CompletionOutcome) -> String {
        var w = JSONWriter()
        w.object { w in
            header(&w, object: chunkObjectName)
            choices(&w, text: "", payload: .closing, finish: outcome.openAIFinishReason)
            Self.timings(&w, outcome)
        }
        return w.text
    }

    /// `stream_options.include_usage`: the chunk after the last choice, with no choices.
    public func usageChunk(_ outcome: CompletionOutcome) -> String {
        var w = JSONWriter()
        w.object { w in
            header(&w, object: chunkObjectName)
            w.array("choices") { _ in }
            Self.usage(&w, outcome)
        }
        return w.text
    }

    /// `GET /v1/models`.
    public static func modelList(name: String, created: Int, contextLength: Int, vocabularySize: Int) -> String {
        var w = JSONWriter()
        w.object { w in
            w.field("object", "list")
            w.array("data") { w in
                w.object { m in
                    m.field("id", name)
                    m.field("object", "model")
                    m.field("created", created)
                    m.field("owned_by", "bitnet.swift")
                    m.object("meta") { meta in
                        meta.field("n_ctx", contextLength)
                        meta.field("n_vocab", vocabularySize)
                    }
                }
            }
        }
        return w.text
    }

    private static func usage(_ w: inout JSONWriter, _ o: CompletionOutcome) {
        w.object("usage") { u in
            u.field("prompt_tokens", o.promptTokens)
            u.field("completion_tokens", o.completionTokens)
            u.field("total_tokens", o.promptTokens + o.completionTokens)
            u.object("prompt_tokens_details") { d in d.field("cached_tokens", o.cachedTokens) }
        }
    }

    private static func timings(_ w: inout JSONWriter, _ o: CompletionOutcome) {
        func ms(_ seconds: Double) -> Double { (seconds * 1_000_000).rounded() / 1000 }
        func rate(_ v: Double) -> Double { (v * 1000).rounded() / 1000 }
        let s = o.stats
        w.object("timings") { t in
            t.field("cached_tokens", o.cachedTokens)
            t.field("prompt_n", s.promptTokens)
            t.field("prompt_ms", ms(s.promptSeconds))
            t.field("prompt_per_second", rate(s.promptTokensPerSecond))
            t.field("predicted_n", s.generatedTokens)
            t.field("predicted_ms", ms(s.generateSeconds))
            t.field("predicted_per_second", rate(s.generatedTokensPerSecond))
        }
    }
}
