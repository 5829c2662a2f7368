/// One model, one KV cache: requests that need the model pass this gate one at a
/// time, first come first served, and at most `maxWaiting` wait behind the one
/// running — a burst beyond that is answered 503 at once instead of piling up
/// threads and timeouts.
public final class RequestGate: @unchecked Sendable {
    public enum Admission: Equatable {
        case admitted
        /// The queue is full: `waiting` requests are already waiting.
        case busy(waiting: Int)
        /// ``close()`` was called (server stopping).
        case closed
    }

    public let maxWaiting: Int
    private let lock = ServerLock()
    private var nextTicket = 0
    private var nowServing = 0
    private var inside = false
    private var waiting = 0
    private var closed = false

    public init(maxWaiting: Int) {
        self.maxWaiting = max(0, maxWaiting)
    }

    /// Waits for this caller's turn. After `.admitted`, call ``leave()`` exactly once.
    public func enter() -> Admission {
        lock.withLock {
            if closed { return .closed }
            if inside || waiting > 0 {
                guard waiting < maxWaiting else { return .busy(waiting: waiting) }
            }
            let ticket = nextTicket
            nextTicket += 1
            waiting += 1
            while !closed && (inside || nowServing != ticket) { lock.wait() }
            waiting -= 1
            if closed {
                lock.broadcast()
                return .closed
            }
            inside = true
            return .admitted
        }
    }

    public func leave() {
        lock.withLock {
            inside = false
            nowServing += 1
            lock.broadcast()
        }
    }

    /// Turns everyone away from now on, waiters included.
    public func close() {
        lock.withLock {
            closed = true
            lock.broadcast()
        }
    }

    /// Requests waiting for their turn (not counting the one inside).
    public var waitingCount: Int { lock.withLock { waiting } }
}
