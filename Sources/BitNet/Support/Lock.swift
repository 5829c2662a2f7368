#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A pthread mutex with one condition variable: guards the model's forward
/// steps, each session's state and the scheduler's queues. `Synchronization.Mutex`
/// would do for the mutex but needs macOS 15 and has no condition variable.
package final class Lock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    package init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    package func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits for a ``broadcast()``; call with the lock held (inside ``withLock(_:)``).
    package func wait() {
        pthread_cond_wait(condition, mutex)
    }

    /// Waits for a ``broadcast()`` or until `seconds` have passed; call with the lock held.
    package func wait(seconds: Double) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let total = Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9 + max(0, seconds)
        var deadline = timespec()
        deadline.tv_sec = time_t(total.rounded(.down))
        deadline.tv_nsec = Int((total - total.rounded(.down)) * 1e9)
        pthread_cond_timedwait(condition, mutex, &deadline)
    }

    package func broadcast() {
        pthread_cond_broadcast(condition)
    }
}
