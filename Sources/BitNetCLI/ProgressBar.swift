import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A one-line progress bar on stderr (only when stderr is a terminal, so logs
/// and pipes stay clean): label, bar, percentage, amount and ETA.
final class ProgressBar {
    private let label: String
    private let total: Double
    private let unit: (Double) -> String
    private let start = Stopwatch.now()
    private var lastDraw = 0.0
    private let enabled = isatty(2) != 0

    init(label: String, total: Double, unit: @escaping (Double) -> String = { String(Int($0)) }) {
        self.label = label
        self.total = max(total, 1)
        self.unit = unit
    }

    func update(_ done: Double, detail: String = "") {
        guard enabled else { return }
        let now = Stopwatch.now()
        guard now - lastDraw > 0.1 || done >= total else { return }
        lastDraw = now
        let fraction = min(1, done / total)
        let width = 30, filled = Int(fraction * Double(width))
        let elapsed = now - start
        let eta = fraction > 0.01 ? elapsed / fraction - elapsed : 0
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let line = "\r\(label) \(bar) \(Int(fraction * 100))% \(unit(done))/\(unit(total)) ETA \(Int(eta))s \(detail)"
        writeStderr(line + "\u{1B}[K")
    }

    func finish() {
        guard enabled else { return }
        writeStderr("\r\u{1B}[K")
    }

    static func bytes(_ value: Double) -> String {
        value >= 1e9 ? String(format: "%.2f GB", value / 1e9) : String(format: "%.0f MB", value / 1e6)
    }
}

/// Writes a line to stderr.
func note(_ text: String) { writeStderr(text + "\n") }

/// Unbuffered write to file descriptor 2 (no shared C stream state).
func writeStderr(_ text: String) {
    fflush(nil) // keep stdout and stderr ordered on a terminal
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
        if n <= 0 { break }
        offset += n
    }
}
