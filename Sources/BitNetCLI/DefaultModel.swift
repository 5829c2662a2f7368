#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The model used when no `-m` is given: $BITNET_MODEL, else the small
/// Shakespeare model this project trains and ships (tools/train), which
/// SwiftPM copies next to the executable as a resource
/// (`bitnet_BitNetCLI.resources/`), or `share/bitnet/` beside an installed
/// binary's `bin/`.
enum DefaultModel {
    static let fileName = "bitnet-shakespeare-i2_s.gguf"

    static func path() -> String? {
        if let env = getenv("BITNET_MODEL"), env.pointee != 0 { return String(cString: env) }
        guard let exe = executableDirectory() else { return nil }
        let candidates = ["\(exe)/bitnet_BitNetCLI.resources/\(fileName)",
                          "\(exe)/bitnet_BitNetCLI.bundle/Contents/Resources/\(fileName)",
                          "\(exe)/../share/bitnet/\(fileName)"]
        return candidates.first { access($0, R_OK) == 0 }
    }

    /// The folder of the running executable (the shipped model, and `bitnet-server`, sit beside it).
    static func executableDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        #if os(Linux)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #else
        let path = CommandLine.arguments[0]
        #endif
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }
}
