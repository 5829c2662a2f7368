import BitNet
import BitNetJSON
@testable import BitNetServer
import Foundation
import Logging
import ServiceLifecycle
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The Hummingbird server end to end: a ``BitNetServer`` over the shipped
/// Shakespeare model (real tokenizer) on a free port of 127.0.0.1, run in-process
/// by its service group, driven by a raw-socket client (so the tests control the
/// bytes: HTTP/1.0, pipelining, chunked bodies, hanging up). Completions are
/// checked against ``Generator`` on a second copy of the model; streaming, stop
/// strings, KV-cache prefix reuse, every error status, disconnects, metrics and
/// graceful shutdown are checked against real responses.
final class ServerTests: XCTestCase {
    static let modelPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/BitNetCLI/Resources/bitnet-shakespeare-i2_s.gguf").path
    static let apiKey = "test-key"
    /// Larger than the model's 256 so a stream runs long enough to hang up in the middle of it.
    static let contextLength = 1024
    static let parallel = 4

    /// Log lines the server writes ("message key=value …"), through swift-log.
    final class LogLines: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func append(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
        var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
    }

    struct CapturingLogHandler: LogHandler {
        let lines: LogLines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?,
                 source: String, file: String, function: String, line: UInt) {
            let all = self.metadata.merging(extra ?? [:]) { $1 }
            lines.append(([message.description] + all.keys.sorted().map { "\($0)=\(all[$0]!)" }).joined(separator: " "))
        }
    }

    /// A server running in a task of its own until ``stop()``.
    final class Running: @unchecked Sendable {
        let server: BitNetServer
        let group: ServiceGroup
        let port: Int
        let task: Task<Void, Never>

        init(_ server: BitNetServer) throws {
            let portBox = PortBox()
            let group = server.makeServiceGroup(signals: []) { port in portBox.set(port) }
            self.server = server
            self.group = group
            task = Task { try? await group.run() }
            guard let port = portBox.wait(seconds: 30) else { throw POSIXError(.ETIMEDOUT) }
            self.port = port
        }

        /// Starts a graceful shutdown (as SIGTERM does).
        func stop() { let group = self.group; Task { await group.triggerGracefulShutdown() } }

        func waitUntilStopped(seconds: Double = 20) -> Bool {
            let done = DispatchSemaphore(value: 0)
            let task = self.task
            Task { await task.value; done.signal() }
            return done.wait(timeout: .now() + seconds) == .success
        }
    }

    final class PortBox: @unchecked Sendable {
        private let condition = NSCondition()
        private var port: Int?
        func set(_ p: Int) { condition.lock(); port = p; condition.broadcast(); condition.unlock() }
        func wait(seconds: Double) -> Int? {
            condition.lock()
            defer { condition.unlock() }
            let deadline = Date().addingTimeInterval(seconds)
            while port == nil, condition.wait(until: deadline) {}
            return port
        }
    }

    static func makeServer(parallel: Int, maxQueue: Int, configure: (inout ServerConfiguration) -> Void,
                           log: LogLines) throws -> (BitNetServer, Tokenizer, ModelWeights) {
        let weights = try ModelWeights(path: ServerTests.modelPath)
        let model = try BitNetModel(weights: weights, contextLength: ServerTests.contextLength, threads: 1)
        let tokenizer = try Tokenizer(gguf: weights.file)
        let template = ChatTemplate.detect(gguf: weights.file, tokenizer: tokenizer).template
        let metrics = ServerMetrics()
        let service = try CompletionService(model: model, tokenizer: tokenizer,
                                            formatter: try template.formatter(tokenizer: tokenizer),
                                            modelName: "bitnet-shakespeare-i2_s.gguf",
                                            scheduling: .init(parallel: parallel,
                                                              contextLength: parallel * ServerTests.contextLength,
                                                              maxQueue: maxQueue, stepTokenBudget: 16,
                                                              onStep: metrics.stepObserver))
        var configuration = ServerConfiguration()
        configuration.port = 0
        configure(&configuration)
        let logger = Logger(label: "test") { _ in CapturingLogHandler(lines: log) }
        return (BitNetServer(service: service, configuration: configuration, logger: logger, metrics: metrics), tokenizer, weights)
    }

    /// One server for the whole class, and a second model instance as the cold reference.
    final class Fixture: @unchecked Sendable {
        let running: Running
        var server: BitNetServer { running.server }
        let reference: BitNetModel
        let tokenizer: Tokenizer
        let log = LogLines()

        init() throws {
            // 4 slots of the same per-slot context, batched: every test below also checks
            // that batching and slot choice change no text
            let (server, tokenizer, weights) = try ServerTests.makeServer(parallel: ServerTests.parallel, maxQueue: 2, configure: {
                $0.apiKey = ServerTests.apiKey
                $0.idleTimeout = 2
                $0.maxBodyBytes = 1 << 20
            }, log: log)
            self.tokenizer = tokenizer
            reference = try BitNetModel(weights: weights, contextLength: ServerTests.contextLength, threads: 1)
            running = try Running(server)
        }
    }

    static let fixture = Result { try Fixture() }

    override class func tearDown() {
        if case .success(let f) = fixture {
            f.running.stop()
            _ = f.running.waitUntilStopped()
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
        let port = try port ?? fixture().running.port
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
        // Connection: close, so that reading to the end of the stream ends with the response.
        var head = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" + extraHeaders
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
        let replies = TextBox(count: prompts.count)
        let texts = TextBox(count: prompts.count)
        nonisolated(unsafe) let test = self // only its stateless request helpers are used
        DispatchQueue.concurrentPerform(iterations: prompts.count) { i in
            let escaped = prompts[i].replacingOccurrences(of: "\n", with: "\\n")
            let stream = i % 2 == 0 ? "" : #","stream":true"#
            guard let reply = try? test.post("/v1/completions", #"{"prompt":"\#(escaped)","max_tokens":\#(lengths[i]),"temperature":0\#(stream)}"#) else { return }
            texts.set(i, i % 2 == 0 ? test.choiceText(reply) : test.streamed(reply).text)
            replies.set(i, String(reply.status))
        }
        for i in prompts.indices {
            XCTAssertEqual(replies.get(i), "200", "request \(i)")
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

    /// `logprobs` in both of OpenAI's shapes, streamed and not: the numbers are a log-softmax
    /// of the reference model's logits for the same tokens (computed here), the alternatives
    /// are the most likely tokens in order, and the tokens spell the text.
    func testLogprobsAreTheModelsInOpenAIsShapes() throws {
        let f = try fixture()
        let prompt = "KING HENRY.\nNow, lords, "
        let ids = f.tokenizer.encode(prompt)
        // the reference: greedy tokens and each position's log-softmax, from a fresh session
        let session = try f.reference.makeSession()
        var feed = ids, tokens: [Int32] = [], distributions: [[Double]] = []
        for _ in 0..<8 {
            let logits = try f.reference.step([SequenceInput(session: session, tokens: feed, logits: .last)])[0]
            let top = Double(logits.max()!)
            let logZ = top + log(logits.reduce(0.0) { $0 + exp(Double($1) - top) })
            distributions.append(logits.map { Double($0) - logZ })
            let token = Sampler.argmax(logits)
            tokens.append(token)
            feed = [token]
        }
        XCTAssertTrue(tokens.allSatisfy { !f.server.service.completionStopTokens.contains($0) })
        func ranked(_ d: [Double], _ k: Int) -> [Int] {
            Array(d.indices.sorted { d[$0] > d[$1] || (d[$0] == d[$1] && $0 < $1) }.prefix(k))
        }
        let spelled = tokens.map { String(decoding: try! f.tokenizer.tokenBytes($0), as: UTF8.self) }

        // completions: parallel arrays; top_logprobs objects hold the 3 likeliest (greedy: the chosen is one)
        let body = #"{"prompt":\#(JSONWriter.quoted(prompt)),"max_tokens":8,"temperature":0,"logprobs":3"#
        let reply = try post("/v1/completions", body + "}")
        XCTAssertEqual(reply.status, 200, reply.text)
        let lp = try XCTUnwrap(reply.json?["choices"]?.array?.first?["logprobs"])
        XCTAssertEqual(lp["tokens"]?.array?.compactMap(\.string), spelled)
        XCTAssertEqual(lp["tokens"]?.array?.compactMap(\.string).joined(), choiceText(reply))
        let values = try XCTUnwrap(lp["token_logprobs"]?.array?.compactMap(\.double))
        XCTAssertEqual(values.count, 8)
        for i in 0..<8 {
            XCTAssertEqual(values[i], distributions[i][Int(tokens[i])], accuracy: 1e-4, "token \(i)")
            let top = try XCTUnwrap(lp["top_logprobs"]?.array?[i].object, "token \(i)")
            let want = ranked(distributions[i], 3)
            XCTAssertEqual(Set(top.keys), Set(want.map { String(decoding: try! f.tokenizer.tokenBytes(Int32($0)), as: UTF8.self) }))
            for id in want {
                let key = String(decoding: try f.tokenizer.tokenBytes(Int32(id)), as: UTF8.self)
                XCTAssertEqual(top[key]?.double ?? 0, distributions[i][id], accuracy: 1e-4)
            }
        }
        let offsets = try XCTUnwrap(lp["text_offset"]?.array?.compactMap(\.int))
        XCTAssertEqual(offsets, spelled.indices.map { i in spelled[..<i].reduce(0) { $0 + $1.unicodeScalars.count } })
        // without logprobs: null
        XCTAssertEqual(try post("/v1/completions", #"{"prompt":"x","max_tokens":2}"#).json?["choices"]?.array?.first?["logprobs"], .null)

        // streamed: the chunks' entries join to the same lists
        let stream = streamed(try post("/v1/completions", body + #","stream":true}"#))
        let streamedTokens = stream.chunks.flatMap { $0["choices"]?.array?.first?["logprobs"]?["tokens"]?.array ?? [] }
        XCTAssertEqual(streamedTokens.compactMap(\.string), spelled)
        let streamedOffsets = stream.chunks.flatMap { $0["choices"]?.array?.first?["logprobs"]?["text_offset"]?.array ?? [] }
        XCTAssertEqual(streamedOffsets.compactMap(\.int), offsets)

        // chat: content[] with bytes and exactly top_logprobs alternatives; sampled at a
        // temperature, the numbers are still the model's (before temperature)
        let service = f.server.service
        let messages: [ChatMessage] = [.user("ROMEO.\n")]
        let chatIDs = service.formatter.tokens(for: messages, addGenerationPrompt: true)
        let chatBody = #"{"messages":[{"role":"user","content":"ROMEO.\n"}],"max_tokens":6,"temperature":1.5,"seed":3,"#
            + #""logprobs":true,"top_logprobs":2"#
        let chat = try post("/v1/chat/completions", chatBody + "}")
        XCTAssertEqual(chat.status, 200, chat.text)
        let content = try XCTUnwrap(chat.json?["choices"]?.array?.first?["logprobs"]?["content"]?.array)
        XCTAssertEqual(content.count, chat.json?["usage"]?["completion_tokens"]?.int)
        let chatSession = try f.reference.makeSession()
        var chatFeed = chatIDs
        var joined: [UInt8] = []
        for (i, entry) in content.enumerated() {
            let logits = try f.reference.step([SequenceInput(session: chatSession, tokens: chatFeed, logits: .last)])[0]
            let top = Double(logits.max()!)
            let logZ = top + log(logits.reduce(0.0) { $0 + exp(Double($1) - top) })
            let bytes = try XCTUnwrap(entry["bytes"]?.array?.compactMap { $0.int.map(UInt8.init) })
            joined += bytes
            let id = try XCTUnwrap((0..<Int32(f.tokenizer.vocabularySize)).first { (try? f.tokenizer.tokenBytes($0)) == bytes
                && abs(Double(logits[Int($0)]) - logZ - (entry["logprob"]?.double ?? 1)) < 1e-4 }, "token \(i)")
            let alternatives = try XCTUnwrap(entry["top_logprobs"]?.array)
            XCTAssertEqual(alternatives.count, 2)
            let want = ranked(logits.map { Double($0) - logZ }, 2)
            XCTAssertEqual(alternatives.compactMap { $0["bytes"]?.array?.compactMap(\.int) },
                           want.map { try! f.tokenizer.tokenBytes(Int32($0)).map(Int.init) })
            chatFeed = [id]
        }
        XCTAssertEqual(String(decoding: joined, as: UTF8.self), choiceText(chat, chat: true))
        let chatStream = streamed(try post("/v1/chat/completions", chatBody + #","stream":true}"#), chat: true)
        let streamedContent = chatStream.chunks.flatMap { $0["choices"]?.array?.first?["logprobs"]?["content"]?.array ?? [] }
        XCTAssertEqual(streamedContent, content, "seeded: the stream carries the same entries")
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
        expect(try post(completions, #"{"prompt":"x","logprobs":21}"#), 400, ["'logprobs'", "0...20"])
        expect(try post(completions, #"{"prompt":"x","logprobs":true}"#), 400, ["'logprobs'"])
        expect(try post(chat, #"{"messages":[{"role":"user","content":"x"}],"top_logprobs":2}"#), 400, ["'top_logprobs'", "\"logprobs\": true"])
        expect(try post(chat, #"{"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":-1}"#), 400, ["'top_logprobs'"])
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
        // A Content-Length over the limit is refused before the body is read (none is sent).
        expect(try exchange(Array("POST /v1/completions HTTP/1.1\r\nAuthorization: Bearer \(Self.apiKey)\r\nContent-Length: 100000000\r\n\r\n".utf8)), 413, ["100000000"])
        // NIO's HTTP parser: headers over the limit, garbage, a TLS hello, a bad header line → 400, connection closed.
        let bigHeader = "GET /health HTTP/1.1\r\nX-Big: \(String(repeating: "a", count: 40_000))\r\n\r\n"
        XCTAssertEqual(try exchange(Array(bigHeader.utf8)).status, 400)
        XCTAssertEqual(try exchange(Array("HELLO\r\n\r\n".utf8)).status, 400)
        XCTAssertEqual(try exchange([0x16, 0x03, 0x01, 0x00, 0xFF, 0x0A, 0x0A]).status, 400)
        XCTAssertEqual(try exchange(Array("GET /health HTTP/1.1\r\nbad header\r\n\r\n".utf8)).status, 400)
        XCTAssertEqual(try exchange(Array("POST /v1/completions HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n".utf8)).status, 400)
        // No body at all (HTTP/1.1 without a length: an empty body).
        expect(try exchange(Array("POST /v1/completions HTTP/1.1\r\nAuthorization: Bearer \(Self.apiKey)\r\nConnection: close\r\n\r\n".utf8)), 400, ["empty"])
        // Still serving.
        XCTAssertEqual(try request("GET", "/health").status, 200)
    }

    func testSlowAndIdleClientsAreClosedWithoutHoldingTheServer() throws {
        // Half a request header, then nothing: closed after the idle timeout (2 s here),
        // and meanwhile others are served (no thread is held by the trickling client).
        let fd = try connect()
        defer { close(fd) }
        sendAll(fd, Array("GET /health HTTP/1.1\r\nHost: x\r\n".utf8))
        let partial = try connect()
        defer { close(partial) }
        sendAll(partial, Array("POST /v1/completions HTTP/1.1\r\nAuthorization: Bearer \(Self.apiKey)\r\nContent-Length: 50\r\n\r\n{\"prompt\"".utf8))
        let start = Date()
        XCTAssertEqual(try request("GET", "/health").status, 200)
        XCTAssertLessThan(Date().timeIntervalSince(start), 1, "a normal request is not delayed")
        XCTAssertEqual(Self.parse(readToEnd(fd)).status, 0, "closed without an answer")
        _ = readToEnd(partial)
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
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
            line = f.log.all.first { $0.hasPrefix("completion client disconnected") }
            if line == nil { usleep(10_000) }
        }
        let logged = try XCTUnwrap(line, "log: \(f.log.all.suffix(5))")
        let generated = logged.components(separatedBy: "generated_tokens=").last?.split(separator: " ").first.flatMap { Int($0) }
        XCTAssertLessThan(try XCTUnwrap(generated), 1000, logged)
    }

    // MARK: - HTTP done by Hummingbird

    /// Reads exactly one response from a connection that stays open (Content-Length or chunked).
    private func readOneResponse(_ fd: Int32, _ pending: inout [UInt8]) -> Reply? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        func fill() -> Bool {
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { return false }
            pending += buffer[0..<n]
            return true
        }
        func find(_ needle: [UInt8], from: Int) -> Int? {
            guard pending.count >= needle.count + from else { return nil }
            return (from...(pending.count - needle.count)).first { pending[$0..<($0 + needle.count)].elementsEqual(needle) }
        }
        var headEnd: Int?
        while true {
            headEnd = find([13, 10, 13, 10], from: 0)
            if headEnd != nil { break }
            if !fill() { return nil }
        }
        let head = Self.parse(Array(pending[..<(headEnd! + 4)]))
        var end: Int
        if let length = head.headers["content-length"].flatMap({ Int($0) }) {
            end = headEnd! + 4 + length
            while pending.count < end { if !fill() { return nil } }
        } else if head.headers["transfer-encoding"] == "chunked" {
            while true {
                if let last = find(Array("\r\n0\r\n\r\n".utf8), from: headEnd! + 2) { end = last + 7; break }
                if !fill() { return nil }
            }
        } else {
            end = headEnd! + 4
        }
        let reply = Self.parse(Array(pending[..<end]))
        pending.removeFirst(end)
        return reply
    }

    func testKeepAliveServesOneHundredRequestsOnOneConnection() throws {
        let fd = try connect()
        defer { close(fd) }
        var pending: [UInt8] = []
        let completion = #"{"prompt":"ROMEO.\n","max_tokens":2,"temperature":0}"#
        for i in 0..<100 {
            let raw: String
            if i % 10 == 9 {
                raw = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(Self.apiKey)\r\n"
                    + "Content-Length: \(completion.utf8.count)\r\n\r\n\(completion)"
            } else {
                raw = "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(Self.apiKey)\r\n\r\n"
            }
            sendAll(fd, Array(raw.utf8))
            let reply = try XCTUnwrap(readOneResponse(fd, &pending), "request \(i) answered on the same connection")
            XCTAssertEqual(reply.status, 200, "request \(i): \(reply.text)")
            XCTAssertNotEqual(reply.headers["connection"], "close")
        }
        // Pipelined: three requests in one write, three answers in order.
        sendAll(fd, Array(("GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + "GET /v1/nothing HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(Self.apiKey)\r\n\r\n"
                           + "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").utf8))
        XCTAssertEqual(readOneResponse(fd, &pending)?.status, 200)
        XCTAssertEqual(readOneResponse(fd, &pending)?.status, 404)
        XCTAssertEqual(readOneResponse(fd, &pending)?.status, 200)
    }

    func testHTTP10GetsNoChunkedEncodingAndChunkedRequestBodiesAreRead() throws {
        let f = try fixture()
        let body = #"{"prompt":"ROMEO.\n","max_tokens":6,"temperature":0,"stream":true}"#
        let raw = "POST /v1/completions HTTP/1.0\r\nAuthorization: Bearer \(Self.apiKey)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        let fd = try connect()
        defer { close(fd) }
        sendAll(fd, Array(raw.utf8))
        let bytes = readToEnd(fd)  // ends because the server closes: that is how HTTP/1.0 delimits it
        let text = String(decoding: bytes, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("HTTP/1.0 200"), text)
        XCTAssertFalse(text.lowercased().contains("transfer-encoding"), text)
        let reply = Self.parse(bytes)
        let want = try referenceText(f.tokenizer.encode("ROMEO.\n"), maxTokens: 6, stops: f.server.service.completionStopTokens)
        XCTAssertEqual(streamed(reply).text, want)
        XCTAssertTrue(streamed(reply).done)

        // A chunked request body (no Content-Length), split mid-JSON.
        let json = Array(#"{"prompt":"ROMEO.\n","max_tokens":6,"temperature":0}"#.utf8)
        var chunked = Array("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(Self.apiKey)\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".utf8)
        for piece in [json[0..<10], json[10...]] {
            chunked += Array("\(String(piece.count, radix: 16))\r\n".utf8) + piece + Array("\r\n".utf8)
        }
        chunked += Array("0\r\n\r\n".utf8)
        let reply2 = try exchange(chunked)
        XCTAssertEqual(reply2.status, 200, reply2.text)
        XCTAssertEqual(choiceText(reply2), want)
    }

    func testAPIKeyIsCheckedBeforeTheBodyIsRead() throws {
        // Headers announcing a large body, and no body: the 401 comes at once.
        let fd = try connect()
        defer { close(fd) }
        sendAll(fd, Array("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: 500000\r\n\r\n".utf8))
        var pending: [UInt8] = []
        let start = Date()
        let reply = try XCTUnwrap(readOneResponse(fd, &pending))
        XCTAssertEqual(reply.status, 401)
        XCTAssertEqual(reply.headers["www-authenticate"], "Bearer")
        XCTAssertLessThan(Date().timeIntervalSince(start), 1)
        XCTAssertTrue(reply.errorMessage.contains("invalid API key"), reply.errorMessage)
        // Probes need no key.
        XCTAssertEqual(try request("GET", "/ready", key: nil).status, 200)
        XCTAssertEqual(try request("GET", "/metrics", key: nil).status, 401)
    }

    func testDisconnectedClientFreesItsSlot() throws {
        let f = try fixture()
        let scheduler = f.server.service.scheduler
        // Non-streamed: the client sends and closes; its generation is cancelled, not run to 1000 tokens.
        let fd = try connect()
        let body = #"{"prompt":"KING LEAR.\n","max_tokens":1000,"temperature":0.8,"seed":3}"#
        sendAll(fd, Array("POST /v1/completions HTTP/1.1\r\nAuthorization: Bearer \(Self.apiKey)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8))
        let deadline = Date().addingTimeInterval(5)
        while scheduler.snapshot.activeSlots == 0, Date() < deadline { usleep(5_000) }
        XCTAssertGreaterThan(scheduler.snapshot.activeSlots, 0, "the request was admitted")
        close(fd)
        let freed = Date().addingTimeInterval(5)
        while scheduler.snapshot.activeSlots > 0, Date() < freed { usleep(5_000) }
        XCTAssertEqual(scheduler.snapshot.activeSlots, 0, "the slot is freed once the client is gone")
        let metrics = try request("GET", "/metrics").text
        XCTAssertTrue(metrics.contains(#"bitnet_requests_cancelled_total{reason="client_gone"}"#), metrics)
    }

    /// A client that half-closes its write side after sending (shutdown(SHUT_WR)) and keeps
    /// reading still gets its whole non-streamed reply: 200, then spaces while it generates
    /// (leading JSON whitespace), then the same body as a client that kept its side open.
    func testHalfClosedClientStillGetsItsReply() throws {
        let f = try fixture()
        let body = #"{"prompt":"ROMEO.\n","max_tokens":40,"temperature":0}"#
        let want = try referenceText(f.tokenizer.encode("ROMEO.\n"), maxTokens: 40, stops: f.server.service.completionStopTokens)
        let fd = try connect()
        defer { close(fd) }
        sendAll(fd, Array(("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(Self.apiKey)\r\n"
                           + "Connection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)").utf8))
        XCTAssertEqual(shutdown(fd, Int32(SHUT_WR)), 0)
        let reply = Self.parse(readToEnd(fd))
        XCTAssertEqual(reply.status, 200, reply.text)
        XCTAssertEqual(choiceText(reply), want, reply.text)
        XCTAssertEqual(reply.json?["usage"]?["completion_tokens"]?.int, 40)
    }

    func testMetricsReadyAndTokenizerEndpoints() throws {
        let f = try fixture()
        XCTAssertEqual(try post("/v1/completions", #"{"prompt":"ROMEO.\n","max_tokens":3,"temperature":0}"#).status, 200)
        XCTAssertEqual(try post("/v1/completions", #"{"prompt":"x","n":2}"#).status, 400)
        let metrics = try request("GET", "/metrics")
        XCTAssertEqual(metrics.status, 200)
        XCTAssertTrue(metrics.headers["content-type"]?.hasPrefix("text/plain") ?? false)
        func value(_ line: String) -> Double? {
            metrics.text.split(separator: "\n").first { $0.hasPrefix(line + " ") }.flatMap { Double($0.split(separator: " ").last!) }
        }
        XCTAssertGreaterThanOrEqual(value(#"bitnet_http_requests_total{route="completions",status="200"}"#) ?? 0, 1, metrics.text)
        XCTAssertGreaterThanOrEqual(value(#"bitnet_http_requests_total{route="completions",status="400"}"#) ?? 0, 1, metrics.text)
        XCTAssertGreaterThanOrEqual(value("bitnet_generated_tokens_total") ?? 0, 3)
        XCTAssertGreaterThanOrEqual(value("bitnet_prompt_tokens_total") ?? 0, Double(f.tokenizer.encode("ROMEO.\n").count))
        XCTAssertEqual(value("bitnet_slots"), Double(Self.parallel))
        XCTAssertEqual(value("bitnet_kv_positions_total"), Double(Self.parallel * Self.contextLength))
        XCTAssertGreaterThanOrEqual(value("bitnet_time_to_first_token_seconds_count") ?? 0, 1)
        XCTAssertGreaterThanOrEqual(value("bitnet_inter_token_latency_seconds_count") ?? 0, 2)
        XCTAssertNotNil(value("bitnet_queue_waiting"))
        // every request here opens a connection of its own (Connection: close); this one is open
        XCTAssertGreaterThanOrEqual(value("bitnet_http_connections_total") ?? 0, 3)
        XCTAssertGreaterThanOrEqual(value("bitnet_http_connections_open") ?? 0, 1)
        // the scheduler's steps: every one counted, each with at least one sequence and row
        let steps = try XCTUnwrap(value("bitnet_step_sequences_count"), metrics.text)
        XCTAssertGreaterThanOrEqual(steps, 3, "the 3 generated tokens took at least 3 steps")
        XCTAssertEqual(value("bitnet_step_rows_count"), steps)
        XCTAssertEqual(value("bitnet_step_seconds_count"), steps)
        XCTAssertGreaterThanOrEqual(value("bitnet_step_rows_sum") ?? 0, value("bitnet_step_sequences_sum") ?? .infinity)
        XCTAssertEqual(value(#"bitnet_step_sequences_bucket{le="+Inf"}"#), steps)

        let ready = try request("GET", "/ready")
        XCTAssertEqual(ready.json?["status"]?.string, "ready")
        XCTAssertEqual(ready.json?["slots"]?.int, Self.parallel)

        let ids = f.tokenizer.encode("KING HENRY.", addSpecial: false)
        let tokenized = try post("/tokenize", #"{"content":"KING HENRY."}"#)
        XCTAssertEqual(tokenized.json?["tokens"]?.array?.compactMap(\.int), ids.map(Int.init))
        let pieces = try post("/tokenize", #"{"content":"KING HENRY.","with_pieces":true}"#)
        XCTAssertEqual(pieces.json?["tokens"]?.array?.compactMap { $0["piece"]?.string }.joined(), "KING HENRY.")
        let list = ids.map(String.init).joined(separator: ",")
        XCTAssertEqual(try post("/detokenize", #"{"tokens":[\#(list)]}"#).json?["content"]?.string, "KING HENRY.")
        let bad = try post("/detokenize", #"{"tokens":[1,"x"]}"#)
        XCTAssertEqual(bad.status, 400)
        XCTAssertTrue(bad.errorMessage.contains("'tokens[1]'"), bad.errorMessage)
    }

    func testGracefulShutdownEndsStreamsWithAFinalEventAndClosesTheListener() throws {
        // A server of its own (stopping must not disturb the shared one), with a short grace period.
        let log = LogLines()
        let (server, _, _) = try Self.makeServer(parallel: 1, maxQueue: 1, configure: { $0.shutdownGrace = 0.5 }, log: log)
        let running = try Running(server)
        let port = running.port

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
        running.stop()
        received += readToEnd(fd)
        close(fd)
        XCTAssertTrue(running.waitUntilStopped())
        XCTAssertLessThan(Date().timeIntervalSince(start), 5, "stopping waits for the grace period, not the generation")
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 0.4, "in-flight streams get the grace period")
        let reply = Self.parse(received)
        XCTAssertEqual(reply.status, 200)
        XCTAssertTrue(reply.events.last?.contains("the server is shutting down") ?? false, "\(reply.events.suffix(2))")
        XCTAssertThrowsError(try connect(port: port), "no longer listening")
        XCTAssertTrue(log.all.contains { $0.hasPrefix("completion cancelled: server stopping") }, "\(log.all.suffix(3))")
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
