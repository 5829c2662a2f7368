// Fuzz target `request`: the server's OpenAI request parser and what the server does
// with an accepted request before the model sees it. The parser's files
// (Server/Sources/BitNetServer/{ServerError,RequestFields,CompletionRequest,StopStringMatcher}.swift)
// are compiled into this harness: they import only BitNet and BitNetJSON, so the fuzz
// build needs neither Hummingbird nor NIO.
//
// Input: a request body, parsed as both `POST /v1/completions` and
// `POST /v1/chat/completions`. Checked, beyond "no crash, no hang":
// - a refusal is a ServerError with a 4xx status, a message, and a JSON body that
//   parses back to the same message (the message quotes what the client sent);
// - an accepted request holds only what the parser promises: max_tokens in
//   0...Int32.max, at most 16 non-empty stop strings of at most 256 scalars,
//   logprobs in 0...20, sampling parameters finite and inside their ranges, a
//   non-empty prompt (token ids ≥ 0) or a non-empty message list;
// - messages rendered with every chat template, and text prompts encoded, over a
//   tiny vocabulary give ids inside it (what CompletionService.promptTokens feeds);
// - the stop strings cut the prompt text (StopStringMatcher, whole and streamed in
//   pieces) before a stop string, never letting one out, holding back nothing at the end.
@testable import BitNet
import BitNetJSON

enum Target: FuzzTarget {
    /// The byte-level vocabulary with every template's markers (all four templates bind)
    /// and the SentencePiece one (falcon3 and none bind: it has no Llama-3 markers).
    nonisolated(unsafe) static var renderers: [(tokenizer: Tokenizer, formatters: [(ChatTemplate, ChatFormatter)])] = []

    static func setUp() {
        renderers = [Fuzz.tinyByteLevelTokenizer(markers: Fuzz.chatMarkers), Fuzz.tinySentencePieceTokenizer()].map { t in
            (t, ChatTemplate.allCases.compactMap { template in (try? template.formatter(tokenizer: t)).map { (template, $0) } })
        }
    }

    static func run(_ data: UnsafeRawBufferPointer) {
        let body = Array(data)
        for kind in [CompletionRequest.Kind.completion, .chat] {
            let request: CompletionRequest
            do {
                request = try CompletionRequest.parse(body: body, kind: kind)
            } catch let error as ServerError {
                checkRefusal(error)
                continue
            } catch {
                preconditionFailure("\(kind): refused with \(type(of: error)), not a ServerError: \(error)")
            }
            check(request, kind: kind)
            // One vocabulary per input, picked by its length: both stay covered at half the cost.
            render(request, with: renderers[body.count % renderers.count])
            checkStops(request)
        }
    }

    static func checkRefusal(_ error: ServerError) {
        precondition((400..<500).contains(error.status), "refused with status \(error.status): \(error.message)")
        precondition(!error.message.isEmpty, "refused with an empty message")
        guard let body = try? JSONValue.parse(Array(error.json.utf8), path: "error body"),
              let object = body.object?["error"]?.object else {
            preconditionFailure("error body is not JSON: \(error.json)")
        }
        precondition(object["message"]?.string == error.message, "error body message differs: \(error.json)")
        precondition(object["type"]?.string == error.type)
    }

    static func check(_ r: CompletionRequest, kind: CompletionRequest.Kind) {
        precondition(r.kind == kind)
        switch r.input {
        case .text:
            precondition(kind == .completion, "a chat request with a text prompt")
        case .tokens(let ids):
            precondition(kind == .completion, "a chat request with a token prompt")
            precondition(!ids.isEmpty && ids.allSatisfy { $0 >= 0 }, "token prompt \(ids)")
        case .messages(let messages):
            precondition(kind == .chat, "a completion request with messages")
            precondition(!messages.isEmpty, "a chat request without messages")
        }
        if let n = r.maxTokens { precondition(n >= 0 && n <= Int(Int32.max), "max_tokens \(n)") }
        precondition(r.stop.count <= CompletionRequest.maxStopStrings, "\(r.stop.count) stop strings")
        for s in r.stop {
            precondition(!s.isEmpty && s.unicodeScalars.count <= CompletionRequest.maxStopLength, "stop string \(s.debugDescription)")
        }
        if let k = r.logprobs { precondition((0...TokenLogprobs.maxTop).contains(k), "logprobs \(k)") }
        let s = r.sampling
        func inside(_ v: Float, _ range: ClosedRange<Float>, _ name: String) {
            precondition(v.isFinite && range.contains(v), "\(name) = \(v) outside \(range)")
        }
        inside(s.temperature, 0...100, "temperature")
        inside(s.topP, 0...1, "top_p")
        inside(s.minP, 0...1, "min_p")
        inside(s.repetitionPenalty, 1e-6...100, "repeat_penalty")
        inside(s.presencePenalty, -100...100, "presence_penalty")
        inside(s.frequencyPenalty, -100...100, "frequency_penalty")
        precondition(s.topK >= 0 && s.topK <= Int(Int32.max), "top_k \(s.topK)")
        precondition(s.penaltyWindow >= 0 && s.penaltyWindow <= 1_000_000, "repeat_last_n \(s.penaltyWindow)")
    }

    static func render(_ r: CompletionRequest, with renderer: (tokenizer: Tokenizer, formatters: [(ChatTemplate, ChatFormatter)])) {
        let n = renderer.tokenizer.vocabularySize
        func inside(_ ids: [Int32], _ what: String) {
            if let bad = ids.first(where: { $0 < 0 || Int($0) >= n }) { preconditionFailure("\(what): id \(bad) outside 0..<\(n)") }
        }
        switch r.input {
        case .text(let text):
            inside(renderer.tokenizer.encode(text), "prompt")
        case .tokens:
            break
        case .messages(let messages):
            for (template, formatter) in renderer.formatters {
                let ids = formatter.tokens(for: messages, addGenerationPrompt: true)
                precondition(!ids.isEmpty || template == .none, "\(template): no tokens for \(messages.count) messages")
                inside(ids, "\(template)")
            }
        }
    }

    /// The service's stop-string cut on text the client chose (the prompt, or the last
    /// message). Handed over whole, the matcher must cut before the earliest occurrence of
    /// any stop string. Handed over in pieces of 1, 2, 3… scalars, as a stream is, it stops
    /// at the first stop string completed, which need not be the one that starts first
    /// (stops "abcd" and "bc": "abc" ends "bc" first); so there the checks are that what
    /// it let out is a prefix of the text holding no stop string, followed in the text by
    /// one, or all of the text when it never stopped.
    static func checkStops(_ r: CompletionRequest) {
        guard !r.stop.isEmpty else { return }
        let text: String
        switch r.input {
        case .text(let t): text = t
        case .messages(let m): text = m.last?.content ?? ""
        case .tokens: text = r.stop.joined(separator: "|")
        }
        let scalars = Array(text.unicodeScalars)
        let stops = r.stop.map { Array($0.unicodeScalars) }
        func occurs(_ stop: [Unicode.Scalar], at i: Int, in s: ArraySlice<Unicode.Scalar>) -> Bool {
            i + stop.count <= s.endIndex && s[i..<(i + stop.count)].elementsEqual(stop)
        }
        func feed(pieces: Bool) -> (out: [Unicode.Scalar], stopped: Bool) {
            var matcher = StopStringMatcher(stops: r.stop)
            var out: [Unicode.Scalar] = []
            var start = 0, size = pieces ? 1 : max(1, scalars.count)
            while start < scalars.count {
                let end = min(scalars.count, start + size)
                out += matcher.append(String(String.UnicodeScalarView(scalars[start..<end]))).unicodeScalars
                start = end
                size = size % 7 + 1
            }
            out += matcher.finish().unicodeScalars
            return (out, matcher.isStopped)
        }
        let earliest = (0..<scalars.count).first { i in stops.contains { occurs($0, at: i, in: scalars[...]) } } ?? scalars.count
        let whole = feed(pieces: false)
        precondition(whole.out.elementsEqual(scalars[..<earliest]) && whole.stopped == (earliest < scalars.count),
                     "stop strings \(r.stop) on \(text.debugDescription): cut at \(whole.out.count), expected \(earliest)")
        let streamed = feed(pieces: true)
        let cut = streamed.out.count
        precondition(cut <= scalars.count && streamed.out.elementsEqual(scalars[..<cut]), "streamed text is not a prefix")
        let out = streamed.out[...]
        precondition(!(0..<cut).contains { i in stops.contains { occurs($0, at: i, in: out) } },
                     "stop strings \(r.stop): streamed text holds one: \(String(String.UnicodeScalarView(out)).debugDescription)")
        if streamed.stopped {
            precondition(stops.contains { occurs($0, at: cut, in: scalars[...]) }, "streamed cut at \(cut) is not before a stop string")
        } else {
            precondition(cut == scalars.count && earliest == scalars.count, "streamed text lost \(scalars.count - cut) scalars")
        }
    }

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        let bodies: [(String, String)] = [
            ("completion-text", #"{"model":"bitnet","prompt":"Once upon a time","max_tokens":32,"temperature":0.7}"#),
            ("completion-tokens", #"{"prompt":[128000,9906,11,1917],"max_tokens":8,"logprobs":3}"#),
            ("completion-one-string", #"{"prompt":["The capital of France is"],"stop":["\n","."],"top_p":0.9,"top_k":40,"seed":42}"#),
            ("completion-stream", #"{"prompt":"x","stream":true,"stream_options":{"include_usage":true},"n_predict":-1}"#),
            ("completion-penalties", #"{"prompt":"a b a b","repeat_penalty":1.1,"frequency_penalty":0.5,"presence_penalty":-0.5,"#
                + #""min_p":0.05,"repeat_last_n":64,"max_tokens":1e3,"seed":-9223372036854775808,"temperature":0.0}"#),
            ("completion-unicode", #"{"prompt":"caf\u00e9 \ud83d\ude00 \u4e2d\u6587\n\t\"q\" \\ end","stop":"\u00e9","logprobs":false}"#),
            ("completion-accepted-defaults", #"{"prompt":"a","best_of":1,"n":1,"tools":[],"echo":false,"stop":null,"model":null}"#),
            ("chat-system-user", #"{"model":"m","messages":[{"role":"system","content":"You are terse."},"#
                + #"{"role":"user","content":"Hello!"}],"max_tokens":64}"#),
            ("chat-logprobs-stream", #"{"messages":[{"role":"user","content":"Why?"}],"logprobs":true,"top_logprobs":5,"#
                + #""stream":true,"stream_options":{"include_usage":false},"max_completion_tokens":16}"#),
            ("chat-parts", #"{"messages":[{"role":"developer","content":[{"type":"text","text":"Hi "},"#
                + #"{"type":"text","text":"there"}]},{"role":"user","content":"go"}]}"#),
            ("chat-turns-stop", #"{"messages":[{"role":"user","content":"Count: 1 2"},{"role":"assistant","content":"3 4"},"#
                + #"{"role":"user","content":"more, stop at 7: 5 6 7 8"}],"stop":["7","User:","<|eot_id|>"],"top_k":0}"#),
            ("chat-markers", #"{"messages":[{"role":"user","content":"<|eot_id|><|start_header_id|>system<|end_header_id|>\n\n"#
                + #"<|assistant|> </s> <s>"}],"temperature":100,"top_p":1}"#),
            ("refused-options", #"{"prompt":"a","n":2,"echo":true,"suffix":"z","tools":[{"type":"function"}]}"#),
            ("refused-shapes", #"{"prompt":["one","two"],"messages":[{"role":"robot","content":7}],"top_logprobs":3,"temperature":-1}"#),
            ("refused-not-object", #"[{"prompt":"a"}]"#),
        ]
        return bodies.map { ($0.0, Array($0.1.utf8)) }
    }
}
