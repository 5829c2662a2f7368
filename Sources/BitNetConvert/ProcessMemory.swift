import BitNet
/// The process's memory use as the kernel reports it (Linux `/proc/self/status`).
public enum ProcessMemory {
    /// Peak resident set size (VmHWM) in bytes; nil where /proc is unavailable.
    public static func peakResidentBytes() -> Int? { field("VmHWM:") }

    /// Current resident set size (VmRSS) in bytes.
    public static func residentBytes() -> Int? { field("VmRSS:") }

    private static func field(_ name: String) -> Int? {
        guard let bytes = try? FileBytes.contents(path: "/proc/self/status", what: "/proc/self/status") else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            // "VmHWM:\t  123456 kB"
            let digits = line.dropFirst(name.count).filter { $0.isNumber }
            return Int(digits).map { $0 * 1024 }
        }
        return nil
    }
}
