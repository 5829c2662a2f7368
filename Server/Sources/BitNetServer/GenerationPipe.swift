import Foundation

/// Carries one request's results from its generation thread to the task that
/// writes the response, with bounded buffering: when `capacity` events are unread
/// (a slow SSE reader whose socket is full, so NIO's writer is waiting), the
/// generation thread blocks in ``send(_:)`` instead of piling text up in memory.
/// The scheduler keeps its slot meanwhile; its tokens are bounded by `max_tokens`.
///
/// Why not `AsyncStream`: its buffering policies either grow without bound or drop
/// elements, and its producer cannot wait. Why a thread at all: the generation
/// side blocks (``CompletionService/run(_:shouldContinue:onText:)`` waits on the
/// scheduler), which must not happen on NIO's event loops or Swift's small
/// cooperative pool.
///
/// All state is guarded by `condition` (the producer waits on it while full).
final class GenerationPipe: @unchecked Sendable {
    enum Event: Sendable {
        /// The request got through tokenization and the scheduler's queue check.
        case admitted(promptTokens: Int)
        /// Text as it becomes final, with the log-probabilities of the tokens that begin in it.
        case text(String, [LogprobEntry])
        case done(CompletionOutcome)
        /// A non-streamed request's client half-closed (sent FIN): the consumer writes a byte
        /// to learn whether it is still reading (sent every 0.5 s until the end).
        case probe
        case failed(ServerError)
    }

    private let condition = NSCondition()
    private var buffer: [Event] = []
    private var head = 0
    private var waiter: CheckedContinuation<Event?, Never>?
    private var finished = false
    private var consumerGone = false
    let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Producer: hands `event` over, waiting while the buffer is full. False when the
    /// consumer is gone (the client disconnected): the generation should stop.
    @discardableResult
    func send(_ event: Event) -> Bool {
        condition.lock()
        while buffer.count - head >= capacity && !consumerGone { condition.wait() }
        if consumerGone {
            condition.unlock()
            return false
        }
        if let waiter {
            self.waiter = nil
            condition.unlock()
            waiter.resume(returning: event)
            return true
        }
        buffer.append(event)
        condition.unlock()
        return true
    }

    /// Producer: no more events.
    func finish() {
        condition.lock()
        finished = true
        let waiter = self.waiter
        self.waiter = nil
        condition.unlock()
        waiter?.resume(returning: nil)
    }

    /// Consumer: it will read no more (its client is gone, or its task was cancelled).
    func cancel() {
        condition.lock()
        consumerGone = true
        buffer.removeAll()
        head = 0
        let waiter = self.waiter
        self.waiter = nil
        condition.broadcast()
        condition.unlock()
        waiter?.resume(returning: nil)
    }

    var isConsumerGone: Bool {
        condition.lock()
        defer { condition.unlock() }
        return consumerGone
    }

    /// Consumer: the next event, nil after ``finish()`` or ``cancel()``. A cancelled
    /// task counts as a consumer that is gone.
    func next() async -> Event? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Event?, Never>) in
                condition.lock()
                if head < buffer.count {
                    let event = buffer[head]
                    head += 1
                    if head == buffer.count { buffer.removeAll(keepingCapacity: true); head = 0 }
                    condition.broadcast()
                    condition.unlock()
                    continuation.resume(returning: event)
                } else if finished || consumerGone {
                    condition.unlock()
                    continuation.resume(returning: nil)
                } else {
                    waiter = continuation
                    condition.unlock()
                }
            }
        } onCancel: {
            cancel()
        }
    }
}

/// Counts requests that hold a generation thread (tokenizing, queued or generating),
/// at most `limit` (the scheduler's slots plus its queue): work before admission is
/// bounded, and more requests get 503 before any tokenizing.
final class Admission: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    let limit: Int

    init(limit: Int) { self.limit = max(1, limit) }

    func tryAcquire() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard count < limit else { return false }
        count += 1
        return true
    }

    func release() {
        lock.lock()
        count -= 1
        lock.unlock()
    }

    var inUse: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }
}

/// Runs blocking work on a thread of its own (never on NIO's event loops or the
/// cooperative pool). The callers bound how many run at once (``Admission``).
enum BlockingThread {
    static func start(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread(block: body)
        thread.name = name
        thread.stackSize = 4 << 20  // tokenizers and the JSON parser recurse
        thread.start()
    }

    /// `body` on its own thread, awaited.
    static func run<T: Sendable>(name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            start(name: name) {
                continuation.resume(with: Result { try body() })
            }
        }
    }
}
