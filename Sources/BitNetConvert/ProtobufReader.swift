import BitNet
/// The few protobuf wire-format rules needed to read a SentencePiece
/// `tokenizer.model` (a serialized `ModelProto`), written by hand so that no
/// protobuf library is needed. Unknown fields are skipped, as protobuf requires.
struct ProtobufReader {
    enum Field {
        case varint(UInt64)
        case fixed64(UInt64)
        case bytes(Range<Int>)
        case fixed32(UInt32)
    }

    let bytes: UnsafeBufferPointer<UInt8>
    let path: String
    private(set) var position: Int
    let end: Int

    init(bytes: UnsafeBufferPointer<UInt8>, path: String, range: Range<Int>? = nil) {
        self.bytes = bytes
        self.path = path
        position = range?.lowerBound ?? 0
        end = range?.upperBound ?? bytes.count
    }

    private func fail(_ reason: String) -> ConvertError {
        .invalidTokenizer(path: path, reason: "malformed protobuf at byte \(position): \(reason)")
    }

    var atEnd: Bool { position >= end }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end else { throw fail("truncated varint") }
            let b = bytes[position]
            position += 1
            guard shift < 64 else { throw fail("varint longer than 10 bytes") }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
        }
    }

    /// The next (field number, value), or nil at the end of the message.
    mutating func next() throws -> (Int, Field)? {
        guard !atEnd else { return nil }
        let key = try varint()
        let number = Int(key >> 3)
        guard number > 0, number < 1 << 29 else { throw fail("invalid field number \(key >> 3)") }
        switch key & 7 {
        case 0:
            return (number, .varint(try varint()))
        case 1:
            guard end - position >= 8 else { throw fail("truncated fixed64") }
            var v: UInt64 = 0
            for i in 0..<8 { v |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
            position += 8
            return (number, .fixed64(v))
        case 2:
            let n = try varint()
            guard n <= UInt64(end - position) else { throw fail("length \(n) runs past the end of the message") }
            let range = position..<(position + Int(n))
            position += Int(n)
            return (number, .bytes(range))
        case 5:
            guard end - position >= 4 else { throw fail("truncated fixed32") }
            var v: UInt32 = 0
            for i in 0..<4 { v |= UInt32(bytes[position + i]) << (8 * UInt32(i)) }
            position += 4
            return (number, .fixed32(v))
        default:
            throw fail("unsupported wire type \(key & 7)")
        }
    }

    func string(_ range: Range<Int>) throws -> String {
        guard let s = String(validating: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self) else {
            throw ConvertError.invalidTokenizer(path: path, reason: "string at byte \(range.lowerBound) is not valid UTF-8")
        }
        return s
    }
}
