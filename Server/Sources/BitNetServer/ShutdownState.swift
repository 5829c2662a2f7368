import Foundation
import NIOConcurrencyHelpers

/// Graceful shutdown as the requests see it: after SIGTERM/SIGINT the listener
/// closes (Hummingbird, through swift-service-lifecycle) and in-flight requests
/// may finish for `grace` seconds; after that ``isExpired`` is true, every
/// generation is cancelled at its next token, and streams end with an error event.
final class ShutdownState: Sendable {
    private struct State {
        var stopping = false
        var expired = false
    }
    private let state = NIOLockedValueBox(State())

    var isStopping: Bool { state.withLockedValue { $0.stopping } }
    var isExpired: Bool { state.withLockedValue { $0.expired } }

    /// Starts the grace period; `onExpiry` runs when it is over (once).
    func begin(grace: Double, onExpiry: @escaping @Sendable () -> Void) {
        let first = state.withLockedValue { s -> Bool in
            defer { s.stopping = true }
            return !s.stopping
        }
        guard first else { return }
        Task.detached {
            try? await Task.sleep(nanoseconds: UInt64(max(0, grace) * 1e9))
            self.expire()
            onExpiry()
        }
    }

    func expire() {
        state.withLockedValue {
            $0.stopping = true
            $0.expired = true
        }
    }
}
