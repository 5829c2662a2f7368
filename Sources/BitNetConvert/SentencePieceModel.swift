import BitNet
/// A SentencePiece `tokenizer.model` (the 1bitLLM models' tokenizer): the
/// pieces with their scores and types, the special ids of the trainer spec and
/// the normalizer's dummy-prefix flag. Field numbers are those of
/// sentencepiece_model.proto: ModelProto.pieces = 1, trainer_spec = 2,
/// normalizer_spec = 3; SentencePiece.piece = 1, score = 2, type = 3;
/// TrainerSpec.unk_id = 40, bos_id = 41, eos_id = 42, pad_id = 43;
/// NormalizerSpec.add_dummy_prefix = 3.
struct SentencePieceModel {
    var pieces: [String] = []
    var scores: [Float] = []
    /// SentencePiece's Type enum, which has llama.cpp's token-type numbering:
    /// 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    var types: [Int32] = []
    var unkID: Int? = 0
    var bosID: Int? = 1
    var eosID: Int? = 2
    var padID: Int? = nil
    var addDummyPrefix = true

    init(path: String) throws {
        let data = try FileBytes.contents(path: path, what: "tokenizer.model")
        try data.withUnsafeBufferPointer { try parse($0, path: path) }
        guard !pieces.isEmpty else { throw ConvertError.invalidTokenizer(path: path, reason: "no pieces (not a SentencePiece model?)") }
    }

    private mutating func parse(_ bytes: UnsafeBufferPointer<UInt8>, path: String) throws {
        var model = ProtobufReader(bytes: bytes, path: path)
        while let (number, field) = try model.next() {
            guard case .bytes(let range) = field else { continue }
            switch number {
            case 1: try parsePiece(ProtobufReader(bytes: bytes, path: path, range: range))
            case 2: try parseTrainer(ProtobufReader(bytes: bytes, path: path, range: range))
            case 3: try parseNormalizer(ProtobufReader(bytes: bytes, path: path, range: range))
            default: continue
            }
        }
    }

    private mutating func parsePiece(_ message: ProtobufReader) throws {
        var r = message
        var piece: String?
        var score: Float = 0
        var type: Int32 = 1
        while let (number, field) = try r.next() {
            switch (number, field) {
            case (1, .bytes(let range)): piece = try r.string(range)
            case (2, .fixed32(let bits)): score = Float(bitPattern: bits)
            case (3, .varint(let v)): type = Int32(truncatingIfNeeded: v)
            default: continue
            }
        }
        guard let piece else {
            throw ConvertError.invalidTokenizer(path: r.path, reason: "piece \(pieces.count) has no text")
        }
        pieces.append(piece)
        scores.append(score)
        types.append((1...6).contains(type) ? type : 1)
    }

    private mutating func parseTrainer(_ message: ProtobufReader) throws {
        var r = message
        while let (number, field) = try r.next() {
            guard case .varint(let v) = field else { continue }
            // int32 fields: -1 (disabled) arrives as a 64-bit two's complement varint
            let id = Int(Int32(truncatingIfNeeded: v))
            switch number {
            case 40: unkID = id >= 0 ? id : nil
            case 41: bosID = id >= 0 ? id : nil
            case 42: eosID = id >= 0 ? id : nil
            case 43: padID = id >= 0 ? id : nil
            default: continue
            }
        }
    }

    private mutating func parseNormalizer(_ message: ProtobufReader) throws {
        var r = message
        while let (number, field) = try r.next() {
            if number == 3, case .varint(let v) = field { addDummyPrefix = v != 0 }
        }
    }
}
