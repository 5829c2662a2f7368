#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Time for the server: a monotonic clock for deadlines and timings (wall-clock
/// jumps must not expire a request), and Unix time for OpenAI's `created`.
enum ServerClock {
    /// Seconds on the monotonic clock (the one generation timings use).
    static func now() -> Double { MonotonicClock.now() }

    /// Seconds since 1970 (UTC).
    static func unixTime() -> Int {
        Int(time(nil))
    }
}
