import Foundation
import XCTest
@testable import BitNet

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `bitnet serve`'s library side end to end: a ``BitNetServer`` over the shipped
/// Shakespeare model (real tokenizer) on a free port, driven by a raw-socket
/// client. Completions are checked against ``Generator`` on a second copy of the
/// model; streaming, stop strings, KV-cache prefix reuse, every error status and
/// a client that hangs up mid-stream are checked against real responses.
final class ServerTests: XCTestCase {
    static let modelPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources/BitNetCLI/Resources/bitnet-shakespeare-i2_s.gguf").path
    static let apiKey = "test-key"
    /// Larger than the model's 256 so a stream runs long enough to hang up in the middle of it.
    static let contextLength = 1024
    static let parallel = 4

    /// Log lines the server writes.
    final class LogLines: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func append(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
        var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
    }

    /// One server for the whole class (loading is cheap, but one is enough), and
    /// a second model instance as the cold reference.
    final class Fixture: @unchecked Sendable {
        let server: BitNetServer
        let reference: BitNetModel
        let tokenizer: Tokenizer
        let log = LogLines()

        init() throws {
            let weights = try ModelWeights(path: ServerTests.modelPath)
            let model = try BitNetModel(weights: weights, contextLength: ServerTests.contextLength, threads: 1)
            reference = try BitNetModel(weights: weights, contextLength: ServerTests.contextLength, threads: 1)
            tokenizer = try Tokenizer(gguf: weights.file)
            let template = ChatTemplate.detect(gguf: weights.file, tokenizer: tokenizer).template
            // 4 slots of the same per-slot context, batched: every test below also checks
            // that batching and slot choice change no text
            let service = try CompletionService(model: model, tokenizer: tokenizer,
                                                formatter: try template.formatter(tokenizer: tokenizer),
                                                modelName: "bitnet-shakespeare-i2_s.gguf",
                                                scheduling: .init(parallel: ServerTests.parallel,
                                                                  contextLength: ServerTests.parallel * ServerTests.contextLength,
                                                                  maxQueue: 2, stepTokenBudget: 16))
            var configuration = ServerConfiguration()
            configuration.port = 0
            configuration.apiKey = ServerTests.apiKey
            configuration.requestTimeout = 0.5
            configuration.writeTimeout = 5
            let log = self.log
            server = BitNetServer(service: service, configuration: configuration) { log.append($0) }
            try server.runInBackground()
        }
    }

    static let fixture = Result { try Fixture() }

    override class func tearDown() {
        if case .success(let f) = fixture {
            f.server.stop()
            f.server.waitUntilStopped()
        }
        super.tearDown()
    }

    private func fixture() throws -> Fixture { try Self.fixture.get() }

    // MARK: - A raw HTTP client

    struct Reply {
        var status = 0
        var headers: [String: String] = [:]
        var body: [UInt8] = []
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: JSONValue? { try? JSONValue.parse(body, path: "response") }
        var errorMessage: String { json?["error"]?["message"]?.string ?? "<no error message in \(text)>" }
        /// The `data:` payloads of a Server-Sent Events body.
        var events: [String] {
            text.components(separatedBy: "\n\n").compactMap { block in
                block.hasPrefix("data: ") ? String(block.dropFirst(6)) : nil
            }
        }
    }

    private func connect(port: Int? = nil) throws -> Int32 {
        let port = try port ?? fixture().server.port
        #if canImport(Darwin)
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #else
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #endif
        XCTAssertGreaterThanOrEqual(fd, 0)
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketConnect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        return fd
    }

    private func sendAll(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Self.sendFlags) }
            if n <= 0 { return }
            offset += n
        }
    }

    #if canImport(Darwin)
    static let sendFlags: Int32 = 0  // SO_NOSIGPIPE is set on the socket
    #else
    static let sendFlags = Int32(MSG_NOSIGNAL)
    #endif

    private func readToEnd(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return out }
            out += buffer[0..<n]
        }
    }

    /// Sends `raw` as is and parses the response (chunked bodies decoded).
    private func exchange(_ raw: [UInt8]) throws -> Reply {
        let fd = try connect()
        defer { close(fd) }
        sendAll(fd, raw)
        return Self.parse(readToEnd(fd))
    }

    private func request(_ method: String, _ path: String, body: String? = nil, key: String? = ServerTests.apiKey,
                         extraHeaders: String = "") throws -> Reply {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\n" + extraHeaders
        if let key { head += "Authorization: Bearer \(key)\r\n" }
        let payload = Array((body ?? "").utf8)
        if body != nil { head += "Content-Type: application/json\r\nContent-Length: \(payload.count)\r\n" }
        return try exchange(Array((head + "\r\n").utf8) + payload)
    }

    private func post(_ path: String, _ body: String) throws -> Reply { try request("POST", path, body: body) }

    static func parse(_ bytes: [UInt8]) -> Reply {
        var reply = Reply()
        guard let end = (0..<max(0, bytes.count - 3)).first(where: { bytes[$0..<($0 + 4)].elementsEqual([13, 10, 13, 10]) })
        else { return reply }
        let head = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        reply.status = Int(head[0].split(separator: " ")[1]) ?? 0
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            reply.headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(bytes[(end + 4)...])
        if reply.headers["transfer-encoding"] == "chunked" {
            var decoded: [UInt8] = []
            var i = 0
            while let lineEnd = (i..<max(i, body.count - 1)).first(where: { body[$0] == 13 && body[$0 + 1] == 10 }),
                  let size = Int(String(decoding: body[i..<lineEnd], as: UTF8.self), radix: 16), size > 0,
                  lineEnd + 2 + size <= body.count {
                decoded += body[(lineEnd + 2)..<(lineEnd + 2 + size)]
                i = lineEnd + 2 + size + 2
            }
            body = decoded
        }
        reply.body = body
        return reply
    }

    // MARK: - Reference

    /// Greedy text from ``Generator`` on a fresh cache, decoded as the server decodes.
    private func referenceText(_ prompt: [Int32], maxTokens: Int, stops: Set<Int32>) throws -> String {
        let f = try fixture()
        var decoder = f.tokenizer.makeStreamingDecoder()
        var text = ""
        try Generator(session: try f.reference.makeSession(), stopTokens: stops).generate(prompt: prompt, maxTokens: maxTokens, sampling: .greedy) { token in
            if !stops.contains(token) { text += try decoder.append(token) }
            return true
        }
        return text + decoder.finish()
    }

    private func choiceText(_ reply: Reply, chat: Bool = false) -> String? {
        let choice = reply.json?["choices"]?.array?.first
        return chat ? choice?["message"]?["content"]?.string : choice?["text"]?.string
    }

    /// Streamed pieces joined, the finish reason of the last choice chunk, and whether it ended with [DONE].
    private func streamed(_ reply: Reply, chat: Bool = false) -> (text: String, finish: String?, done: Bool, chunks: [JSONValue]) {
        var text = "", finish: String? = nil
        var chunks: [JSONValue] = []
        for event in reply.events where event != "[DONE]" {
            guard let chunk = try? JSONValue.parse(Array(event.utf8), path: "chunk") else { continue }
            chunks.append(chunk)
            guard let choice = chunk["choices"]?.array?.first else { continue }
            text += (chat ? choice["delta"]?["content"]?.string : choice["text"]?.string) ?? ""
            if let reason = choice["finish_reason"]?.string { finish = reason }
        }
        return (text, finish, reply.events.last == "[DONE]", chunks)
    }

    // MARK: - Pieces

    func testJSONWriterEscapesEverythingAndRoundTrips() throws {
        let samples = ["plain", "quote \" backslash \\ slash /", "\u{0}\u{1}\u{8}\u{9}\u{A}\u{C}\u{D}\u{1F}\u{7F}",
                       "héllo wörld — 日本語 🎭", "\u{2028}\u{2029}", ""]
        for s in samples {
            let quoted = JSONWriter.quoted(s)
            XCTAssertFalse(quoted.unicodeScalars.dropFirst().dropLast().contains { $0.value < 0x20 }, "no raw control characters")
            XCTAssertEqual(try JSONValue.parse(Array("[\(quoted)]".utf8), path: "t"), .array([.string(s)]), quoted)
        }
        XCTAssertEqual(JSONWriter.quoted("a\"b\\c\nd\u{1}"), #""a\"b\\c\nd\u0001""#)
        // Invalid UTF-8 as the streaming decoder finishes it (a truncated 3-byte
        // character, a lone continuation byte): U+FFFD, still valid JSON.
        let tokenizer = try fixture().tokenizer
        var decoder = tokenizer.makeStreamingDecoder()
        var text = ""
        for id in tokenizer.encode(bytes: [0x41, 0xE2, 0x82], addSpecial: false) { text += try decoder.append(id) }
        XCTAssertEqual(text, "A", "the incomplete character is held back")
        text += decoder.finish()
        for id in tokenizer.encode(bytes: [0x80, 0x42], addSpecial: false) { text += try decoder.append(id) }
        XCTAssertEqual(text, "A\u{FFFD}\u{FFFD}B")
        XCTAssertEqual(try JSONValue.parse(Array(JSONWriter.quoted(text).utf8), path: "t"), .string(text))
        XCTAssertEqual(JSONWriter.quoted(utf8: [0x61, 0xFF, 0x62]), "\"a\u{FFFD}b\"")
        var w = JSONWriter()
        w.object { o in
            o.field("a", 1); o.field("b", 0.25); o.field("c", Double.nan); o.array("d") { a in a.int(1); a.string("x") }
        }
        XCTAssertEqual(w.text, #"{"a":1,"b":0.25,"c":null,"d":[1,"x"]}"#)
    }

    func testStopStringMatcherHoldsBackAndCuts() {
        var m = StopStringMatcher(stops: ["END", "\n\n"])
        XCTAssertEqual(m.append("hello E"), "hello ", "an 'E' could start END: held back")
        XCTAssertEqual(m.append("N"), "")
        XCTAssertEqual(m.append("Dless"), "", "END completed: cut, nothing more")
        XCTAssertTrue(m.isStopped)
        XCTAssertEqual(m.finish(), "")

        var n = StopStringMatcher(stops: ["END"])
        XCTAssertEqual(n.append("EN"), "")
        XCTAssertEqual(n.append("x"), "ENx", "not a stop after all")
        XCTAssertEqual(n.append("EEN"), "E")
        XCTAssertEqual(n.finish(), "EN", "held-back text comes out at the end")

        var o = StopStringMatcher(stops: ["c", "ab"])
        XCTAssertEqual(o.append("xabc"), "x", "the earliest stop wins, whichever it is")
        XCTAssertTrue(o.isStopped)
        var p = StopStringMatcher(stops: ["b", "abc"])
        XCTAssertEqual(p.append("xab"), "xa", "a complete stop wins over a longer one that might still come")

        var q = StopStringMatcher(stops: ["🎭!"])
        XCTAssertEqual(q.append("é🎭"), "é", "held back by whole scalars")
        XCTAssertEqual(q.append("?"), "🎭?")
    }

    func testHealthModelsAndAPIKey() throws {
        let health = try request("GET", "/health", key: nil)
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(health.json, .object(["status": .string("ok")]))

        let models = try request("GET", "/v1/models")
        XCTAssertEqual(models.status, 200, models.text)
        XCTAssertEqual(models.json?["data"]?.array?.first?["id"]?.string, "bitnet-shakespeare-i2_s.gguf")
        XCTAssertEqual(models.json?["object"]?.string, "list")

        let missing = try request("GET", "/v1/models", key: nil)
        XCTAssertEqual(missing.status, 401)
        XCTAssertTrue(missing.errorMessage.contains("Authorization"), missing.errorMessage)
        XCTAssertEqual(missing.json?["error"]?["type"]?.string, "authentication_error")
        let wrong = try request("POST", "/v1/completions", body: #"{"prompt":"x"}"#, key: "nope")
        XCTAssertEqual(wrong.status, 401)
        XCTAssertTrue(wrong.errorMessage.contains("invalid API key"), wrong.errorMessage)
    }

    func testGreedyCompletionMatchesGeneratorAndStreamsTheSameText() throws {
        let f = try fixture()
        let prompt = "KING HENRY.\nNow, lords, "
        let want = try referenceText(f.tokenizer.encode(prompt), maxTokens: 24, stops: f.server.service.completionStopTokens)
        XCTAssertFalse(want.isEmpty)

        let body = #"{"model":"m","prompt":"KING HENRY.\nNow, lords, ","max_tokens":24,"temperature":0"#
        let reply = try post("/v1/completions", body + "}")
        XCTAssertEqual(reply.status, 200, reply.text)
        XCTAssertEqual(reply.headers["content-type"], "application/json; charset=utf-8")
        let json = try XCTUnwrap(reply.json)
        XCTAssertEqual(choiceText(reply), want)
        XCTAssertEqual(json["object"]?.string, "text_completion")
        XCTAssertEqual(json["model"]?.string, "bitnet-shakespeare-i2_s.gguf")
        XCTAssertTrue(json["id"]?.string?.hasPrefix("cmpl-") ?? false)
        XCTAssertEqual(json["choices"]?.array?.first?["finish_reason"]?.string, "length")
        let promptTokens = f.tokenizer.encode(prompt).count
        XCTAssertEqual(json["usage"]?["prompt_tokens"]?.int, promptTokens)
        XCTAssertEqual(json["usage"]?["completion_tokens"]?.int, 24)
        XCTAssertEqual(json["usage"]?["total_tokens"]?.int, promptTokens + 24)
        XCTAssertEqual(json["timings"]?["predicted_n"]?.int, 24)
        XCTAssertNotNil(json["timings"]?["predicted_per_second"]?.double)
        XCTAssertEqual(json["timings"]?["cached_tokens"]?.int, json["usage"]?["prompt_tokens_details"]?["cached_tokens"]?.int)

        let stream = try post("/v1/completions", body + #","stream":true,"stream_options":{"include_usage":true}}"#)
        XCTAssertEqual(stream.status, 200)
        XCTAssertEqual(stream.headers["content-type"], "text/event-stream; charset=utf-8")
        XCTAssertEqual(stream.headers["transfer-encoding"], "chunked")
        let s = streamed(stream)
        XCTAssertEqual(s.text, want, "the stream's pieces join to the same text")
        XCTAssertEqual(s.finish, "length")
        XCTAssertTrue(s.done, "ends with data: [DONE]")
        XCTAssertGreaterThan(s.chunks.count, 5, "streamed piece by piece")
        XCTAssertEqual(s.chunks.last?["usage"]?["completion_tokens"]?.int, 24, "include_usage adds a usage chunk")
        XCTAssertEqual(s.chunks.last?["choices"]?.array?.count, 0)
        XCTAssertEqual(Set(s.chunks.compactMap { $0["id"]?.string }).count, 1, "one id for the whole stream")

        // A prompt given as token ids is the same prompt.
        let ids = f.tokenizer.encode(prompt).map(String.init).joined(separator: ",")
        let byIDs = try post("/v1/completions", #"{"prompt":[\#(ids)],"max_tokens":24,"temperature":0}"#)
        XCTAssertEqual(choiceText(byIDs), want)
    }

    /// Requests at the same time are generated together (continuous batching) and each
    /// gets the text it gets alone.
    func testConcurrentRequestsEachGetTheirTextAlone() throws {
        let f = try fixture()
        let prompts = ["KING HENRY.\nNow, lords, ", "ROMEO.\n", "Enter a MESSENGER.\n\nMESSENGER.\nMy lord, the ", "FIRST"]
        let lengths = [20, 12, 30, 8]
        let wants = try zip(prompts, lengths).map {
            try referenceText(f.tokenizer.encode($0), maxTokens: $1, stops: f.server.service.completionStopTokens)
        }
        let replies = ResultBox(count: prompts.count)
        let texts = TextBox(count: prompts.count)
        nonisolated(unsafe) let test = self // only its stateless request helpers are used
        DispatchQueue.concurrentPerform(iterations: prompts.count) { i in
            let escaped = prompts[i].replacingOccurrences(of: "\n", with: "\\n")
            let stream = i % 2 == 0 ? "" : #","stream":true"#
            guard let reply = try? test.post("/v1/completions", #"{"prompt":"\#(escaped)","max_tokens":\#(lengths[i]),"temperature":0\#(stream)}"#) else { return }
            texts.set(i, i % 2 == 0 ? test.choiceText(reply) : test.streamed(reply).text)
            replies.set(i, [Float(reply.status)])
        }
        for i in prompts.indices {
            XCTAssertEqual(replies.get(i), [200], "request \(i)")
            XCTAssertEqual(texts.get(i), wants[i], "request \(i)")
        }
    }

    func testChatCompletionRendersTheTemplateAndReusesTheConversation() throws {
        let f = try fixture()
        let service = f.server.service
        let messages: [ChatMessage] = [.system("Speak as a king."), .user("HAMLET.\nWho art thou?\n\n")]
        let promptIDs = service.formatter.tokens(for: messages, addGenerationPrompt: true)
        let want = try referenceText(promptIDs, maxTokens: 16, stops: service.chatStopTokens)
        let body = #"{"messages":[{"role":"system","content":"Speak as a king."},"#
            + #"{"role":"user","content":[{"type":"text","text":"HAMLET.\nWho art thou?\n\n"}]}],"max_tokens":16,"temperature":0"#
        let reply = try post("/v1/chat/completions", body + "}")
        XCTAssertEqual(reply.status, 200, reply.text)
        XCTAssertEqual(choiceText(reply, chat: true), want)
        XCTAssertEqual(reply.json?["object"]?.string, "chat.completion")
        XCTAssertEqual(reply.json?["choices"]?.array?.first?["message"]?["role"]?.string, "assistant")
        XCTAssertEqual(reply.json?["usage"]?["prompt_tokens"]?.int, promptIDs.count)

        let stream = try post("/v1/chat/completions", body + #","stream":true}"#)
        let s = streamed(stream, chat: true)
        XCTAssertEqual(s.text, want)
        XCTAssertEqual(s.finish, "length")
        XCTAssertTrue(s.done)
        XCTAssertEqual(s.chunks.first?["object"]?.string, "chat.completion.chunk")
        XCTAssertEqual(s.chunks.first?["choices"]?.array?.first?["delta"]?["role"]?.string, "assistant")

        // The client resends the conversation with the reply and a new question:
        // only the new turn is computed.
        let next = body.replacingOccurrences(of: #"],"max_tokens""#, with: #","#
            + #"{"role":"assistant","content":\#(JSONWriter.quoted(want))},{"role":"user","content":"Speak!"}],"max_tokens""#)
        let second = try post("/v1/chat/completions", next + "}")
        XCTAssertEqual(second.status, 200, second.text)
        let cached = try XCTUnwrap(second.json?["timings"]?["cached_tokens"]?.int)
        XCTAssertGreaterThanOrEqual(cached, promptIDs.count, "the whole first turn came from the cache")
        let all = messages + [.assistant(want), .user("Speak!")]
        let secondIDs = service.formatter.tokens(for: all, addGenerationPrompt: true)
        XCTAssertEqual(second.json?["usage"]?["prompt_tokens"]?.int, secondIDs.count)
        XCTAssertEqual(choiceText(second, chat: true), try referenceText(secondIDs, maxTokens: 16, stops: service.chatStopTokens))
    }

    func testStopStringsCutTheTextAndFinishWithStop() throws {
        let f = try fixture()
        let prompt = "ROMEO.\n"
        let full = try referenceText(f.tokenizer.encode(prompt), maxTokens: 40, stops: f.server.service.completionStopTokens)
        // A stop string from the middle of the greedy text (two characters
        // spanning a token boundary are likely somewhere in there).
        let chars = Array(full)
        XCTAssertGreaterThan(chars.count, 20, full)
        let stop = String(chars[12..<15])
        let stopRange = try XCTUnwrap(full.range(of: stop))
        let cut = String(full[..<stopRange.lowerBound])
        let body = #"{"prompt":"ROMEO.\n","max_tokens":40,"temperature":0,"stop":["zzzz",\#(JSONWriter.quoted(stop))]"#
        let reply = try post("/v1/completions", body + "}")
        XCTAssertEqual(choiceText(reply), cut)
        XCTAssertEqual(reply.json?["choices"]?.array?.first?["finish_reason"]?.string, "stop")
        let s = streamed(try post("/v1/completions", body + #","stream":true}"#))
        XCTAssertEqual(s.text, cut, "no part of the stop string leaks into the stream")
        XCTAssertEqual(s.finish, "stop")
        // A single string works too.
        let single = try post("/v1/completions", #"{"prompt":"ROMEO.\n","max_tokens":40,"temperature":0,"stop":\#(JSONWriter.quoted(stop))}"#)
        XCTAssertEqual(choiceText(single), cut)
    }

    func testSharedPrefixComesFromTheCacheWithTheColdText() throws {
        let f = try fixture()
        let first = "JULIET.\nO Romeo, Romeo, wherefore art thou"
        let second = first + " Romeo? Deny thy father"
        let a = try post("/v1/completions", #"{"prompt":\#(JSONWriter.quoted(first)),"max_tokens":6,"temperature":0}"#)
        XCTAssertEqual(a.status, 200, a.text)
        let b = try post("/v1/completions", #"{"prompt":\#(JSONWriter.quoted(second)),"max_tokens":12,"temperature":0}"#)
        let secondIDs = f.tokenizer.encode(second)
        let cached = try XCTUnwrap(b.json?["timings"]?["cached_tokens"]?.int)
        XCTAssertGreaterThan(cached, 5, "the shared prefix was reused")
        XCTAssertEqual(b.json?["usage"]?["prompt_tokens"]?.int, secondIDs.count, "prompt_tokens counts the whole prompt")
        XCTAssertEqual(b.json?["timings"]?["prompt_n"]?.int, secondIDs.count - cached, "only the rest was computed")
        let cold = try referenceText(secondIDs, maxTokens: 12, stops: f.server.service.completionStopTokens)
        XCTAssertEqual(choiceText(b), cold, "the same text as from an empty cache")
        // The same prompt again: everything but the last token is cached.
        let c = try post("/v1/completions", #"{"prompt":\#(JSONWriter.quoted(second)),"max_tokens":12,"temperature":0}"#)
        XCTAssertEqual(c.json?["timings"]?["cached_tokens"]?.int, secondIDs.count - 1)
        XCTAssertEqual(choiceText(c), cold)
        // Seeded sampling is reproducible, cached or not.
        let sampled = #"{"prompt":\#(JSONWriter.quoted(second)),"max_tokens":12,"temperature":1,"seed":5,"repeat_penalty":1.3}"#
        XCTAssertEqual(choiceText(try post("/v1/completions", sampled)), choiceText(try post("/v1/completions", sampled)))
    }

    // MARK: - Errors

    func testBadRequestsGetTheRightStatusAndNameTheField() throws {
        func expect(_ reply: Reply, _ status: Int, _ fragments: [String], line: UInt = #line) {
            XCTAssertEqual(reply.status, status, reply.text, line: line)
            for fragment in fragments {
                XCTAssertTrue(reply.errorMessage.contains(fragment), "'\(fragment)' in: \(reply.errorMessage)", line: line)
            }
        }
        let completions = "/v1/completions", chat = "/v1/chat/completions"
        expect(try post(completions, #"{"prompt": "#), 400, ["invalid JSON"])
        expect(try post(completions, "[1,2]"), 400, ["JSON object"])
        expect(try post(completions, #"{"prompt":"x","max_tokens":"ten"}"#), 400, ["field 'max_tokens' must be an integer", "\"ten\""])
        expect(try post(completions, #"{"prompt":"x","max_tokens":-3}"#), 400, ["'max_tokens'"])
        expect(try post(completions, #"{"prompt":"x","temperature":-1}"#), 400, ["'temperature'"])
        expect(try post(completions, #"{"prompt":"x","top_p":2}"#), 400, ["'top_p'"])
        expect(try post(completions, #"{"prompt":"x","stream":"yes"}"#), 400, ["'stream'"])
        expect(try post(completions, #"{"prompt":"x","stop":5}"#), 400, ["'stop'"])
        expect(try post(completions, #"{"prompt":"x","stop":[""]}"#), 400, ["'stop'"])
        expect(try post(completions, #"{"prompt":"x","n":2}"#), 400, ["'n'"])
        expect(try post(completions, #"{"prompt":"x","logprobs":3}"#), 400, ["'logprobs'"])
        expect(try post(completions, #"{"prompt":42}"#), 400, ["'prompt'"])
        expect(try post(completions, #"{"max_tokens":1}"#), 400, ["'prompt' is required"])
        expect(try post(completions, #"{"prompt":[1,99999]}"#), 400, ["'prompt[1]'", "4096"])
        expect(try post(chat, #"{"prompt":"x"}"#), 400, ["'messages' is required"])
        expect(try post(chat, #"{"messages":[]}"#), 400, ["'messages'"])
        expect(try post(chat, #"{"messages":[{"role":"robot","content":"x"}]}"#), 400, ["'messages[0].role'", "robot"])
        expect(try post(chat, #"{"messages":[{"role":"user","content":7}]}"#), 400, ["'messages[0].content'"])
        // A prompt longer than the context names both lengths.
        let long = (0..<1100).map { _ in "1" }.joined(separator: ",")
        expect(try post(completions, #"{"prompt":[\#(long)]}"#), 400, ["1100 tokens", "\(Self.contextLength)"])
        let text = String(repeating: "Romeo ", count: 1100)
        let tokens = try fixture().tokenizer.encode(text).count
        expect(try post(completions, #"{"prompt":"\#(text)"}"#), 400, ["\(tokens) tokens", "\(Self.contextLength)"])

        // HTTP-level errors.
        expect(try request("GET", "/v1/nothing"), 404, ["/v1/nothing", "POST /v1/chat/completions"])
        let wrongMethod = try request("GET", completions)
        expect(wrongMethod, 405, ["GET", "POST"])
        XCTAssertEqual(wrongMethod.headers["allow"], "POST")
        expect(try request("POST", "/health", body: "{}"), 405, ["POST"])
        expect(try exchange(Array("POST /v1/completions HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n".utf8)), 413, ["100000000"])
        let bigHeader = "GET /health HTTP/1.1\r\nX-Big: \(String(repeating: "a", count: 40_000))\r\n\r\n"
        XCTAssertEqual(try exchange(Array(bigHeader.utf8)).status, 431)
        expect(try exchange(Array("HELLO\r\n\r\n".utf8)), 400, ["malformed request line"])
        expect(try exchange([0x16, 0x03, 0x01, 0x00, 0xFF, 0x0A, 0x0A]), 400, [])  // a TLS hello, say
        expect(try exchange(Array("GET /health HTTP/2.0\r\n\r\n".utf8)), 505, ["HTTP/2.0"])
        expect(try exchange(Array("GET /health HTTP/1.1\r\nbad header\r\n\r\n".utf8)), 400, ["malformed header line 1"])
        expect(try exchange(Array("POST /v1/completions HTTP/1.1\r\n\r\n".utf8)), 411, ["Content-Length"])
        expect(try exchange(Array("POST /v1/completions HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n".utf8)), 400, ["Content-Length"])
        // Still serving.
        XCTAssertEqual(try request("GET", "/health").status, 200)
    }

    func testSlowAndIdleClientsTimeOut() throws {
        // Half a request header, then nothing: 408 after the request timeout (0.5 s here).
        let fd = try connect()
        defer { close(fd) }
        sendAll(fd, Array("GET /health HTTP/1.1\r\nHost: x\r\n".utf8))
        let start = Date()
        let reply = Self.parse(readToEnd(fd))
        XCTAssertEqual(reply.status, 408, reply.text)
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        // Half a body.
        let partial = try connect()
        defer { close(partial) }
        sendAll(partial, Array("POST /v1/completions HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"prompt\"".utf8))
        let bodyReply = Self.parse(readToEnd(partial))
        XCTAssertEqual(bodyReply.status, 408)
        XCTAssertTrue(bodyReply.errorMessage.contains("of 50 bytes"), bodyReply.errorMessage)
        // Nothing at all: closed without an answer.
        let idle = try connect()
        defer { close(idle) }
        XCTAssertEqual(readToEnd(idle), [])
        XCTAssertEqual(try request("GET", "/health").status, 200)
    }

    func testClientThatHangsUpMidStreamDoesNotStopTheServer() throws {
        let f = try fixture()
        let fd = try connect()
        let body = #"{"prompt":"KING LEAR.\n","max_tokens":1000,"temperature":0.8,"seed":1,"stream":true}"#
        sendAll(fd, Array("POST /v1/completions HTTP/1.1\r\nAuthorization: Bearer \(Self.apiKey)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8))
        // Read until two events have arrived, then hang up.
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while String(decoding: received, as: UTF8.self).components(separatedBy: "data: ").count < 3 {
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { break }
            received += buffer[0..<n]
        }
        close(fd)
        XCTAssertTrue(String(decoding: received, as: UTF8.self).hasPrefix("HTTP/1.1 200"))

        // The next request is answered, and the abandoned one stopped early.
        let next = try post("/v1/completions", #"{"prompt":"KING LEAR.\n","max_tokens":3,"temperature":0}"#)
        XCTAssertEqual(next.status, 200, next.text)
        XCTAssertEqual(next.json?["usage"]?["completion_tokens"]?.int, 3)
        let deadline = Date().addingTimeInterval(5)
        var line: String? = nil
        while line == nil, Date() < deadline {
            line = f.log.all.first { $0.contains("client disconnected") }
            if line == nil { usleep(10_000) }
        }
        let logged = try XCTUnwrap(line, "log: \(f.log.all.suffix(5))")
        let generated = logged.components(separatedBy: "generated ").last?.split(separator: " ").first.flatMap { Int($0) }
        XCTAssertLessThan(try XCTUnwrap(generated), 1000, logged)
    }

    func testStopEndsStreamsAndClosesTheListener() throws {
        // A server of its own (a second model: stopping must not disturb the shared one).
        let weights = try ModelWeights(path: Self.modelPath)
        let model = try BitNetModel(weights: weights, contextLength: Self.contextLength, threads: 1)
        let tokenizer = try Tokenizer(gguf: weights.file)
        let service = try CompletionService(model: model, tokenizer: tokenizer,
                                        formatter: try ChatTemplate.none.formatter(tokenizer: tokenizer), modelName: "m")
        var configuration = ServerConfiguration()
        configuration.port = 0
        let server = BitNetServer(service: service, configuration: configuration)
        try server.runInBackground()
        let port = server.port

        let fd = try connect(port: port)
        let body = #"{"prompt":"KING LEAR.\n","max_tokens":1000,"temperature":0.8,"seed":2,"stream":true}"#
        sendAll(fd, Array("POST /v1/completions HTTP/1.1\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: received, as: UTF8.self).contains("data: ") {
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { break }
            received += buffer[0..<n]
        }
        let start = Date()
        server.stop()
        received += readToEnd(fd)
        close(fd)  // (the server lingers until the client closes)
        server.waitUntilStopped()
        XCTAssertLessThan(Date().timeIntervalSince(start), 5, "stopping does not wait for the generation to finish")
        let reply = Self.parse(received)
        XCTAssertEqual(reply.status, 200)
        XCTAssertTrue(reply.events.last?.contains("the server is shutting down") ?? false, "\(reply.events.suffix(2))")
        XCTAssertThrowsError(try connect(port: port), "no longer listening")
    }
}


/// `connect(2)`, named apart from ``ServerTests``' own `connect()`.
private func socketConnect(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 {
    connect(fd, address, length)
}

/// Texts written by concurrent requests, under a lock.
private final class TextBox: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ v: String?) { lock.lock(); values[i] = v; lock.unlock() }
    func get(_ i: Int) -> String? { lock.lock(); defer { lock.unlock() }; return values[i] }
}
