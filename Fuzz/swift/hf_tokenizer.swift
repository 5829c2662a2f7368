// Fuzz target `hf_tokenizer`: convert's tokenizer readers — tokenizer.json
// (byte-level BPE: vocab, merges in both spellings, added tokens, pre-tokenizer
// detection) or tokenizer.model (SentencePiece protobuf) — then the metadata they
// produce, written as GGUF and loaded back as a Tokenizer, as `convert` followed
// by `generate` would.
//
// Input: one mode byte, then the file's bytes. Mode bit 0: the bytes are
// tokenizer.model (else tokenizer.json); bit 1: a tokenizer_config.json with a
// chat template and BOS/EOS names sits beside it; bits 2-3 pick the model's
// vocabulary size (300, 512, 1024, 32000).
#if canImport(Glibc)
import Glibc
#endif
@testable import BitNet
@testable import BitNetConvert
@testable import BitNetJSON

enum Target: FuzzTarget {
    nonisolated(unsafe) static var config: HFModelConfig!
    nonisolated(unsafe) static var folder = ""

    static func setUp() {
        folder = "\(Fuzz.scratch)/hf"
        mkdir(folder, 0o700)
        let json = #"{"architectures":["BitNetForCausalLM"],"hidden_size":32,"intermediate_size":64,"num_hidden_layers":1,"#
            + #""num_attention_heads":2,"vocab_size":300,"bos_token_id":1,"eos_token_id":[2,3]}"#
        config = try! HFModelConfig(json: JSONValue.parse(Array(json.utf8), path: "config.json"), path: "config.json")
    }

    static func run(_ data: UnsafeRawBufferPointer) {
        var reader = ByteReader(data)
        let mode = reader.u8()
        let content = reader.rest()
        let model = "\(folder)/tokenizer.model", json = "\(folder)/tokenizer.json", cfg = "\(folder)/tokenizer_config.json"
        unlink(model); unlink(json); unlink(cfg)
        Fuzz.writeFile(content, path: mode & 1 == 1 ? model : json)
        if mode & 2 != 0 {
            Fuzz.write(Array(#"{"bos_token":"<s>","eos_token":{"content":"</s>"},"add_bos_token":true,"chat_template":"{{ '<|eot_id|>' }}Assistant: "}"#.utf8),
                       name: "hf/tokenizer_config.json")
        }
        let vocabSize = [300, 512, 1024, 32000][Int(mode >> 2) & 3]
        guard let metadata = try? HFTokenizerMetadata(folder: folder, vocabSize: vocabSize, config: config) else { return }
        let path = "\(Fuzz.scratch)/converted.gguf"
        do {
            try GGUFWriter.write(to: path, metadata: metadata.entries, tensors: [])
        } catch {
            // the converter's metadata must always be writable: a failure here would make `convert` fail late
            fatalError("HFTokenizerMetadata produced metadata GGUFWriter refuses: \(error)")
        }
        guard let tokenizer = try? Tokenizer(path: path) else { return }
        Fuzz.exercise(tokenizer)
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where u.value < 0x20: out += "\\u00" + String(u.value, radix: 16).leftPadded(to: 2)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    /// A byte-level BPE tokenizer.json: the 256 byte symbols, a few merges, added tokens.
    static func bpeJSON(llama3Pre: Bool, pairMerges: Bool) -> String {
        var vocab = (0..<256).map { (String(UnicodeScalar(ByteLevel.byteToScalar[$0])!), $0) }
        let merges = [("Ġ", "t"), ("Ġt", "h"), ("h", "e"), ("Ġth", "e")]
        for (i, m) in merges.enumerated() { vocab.append((m.0 + m.1, 256 + i)) }
        let vocabText = vocab.map { "\(jsonString($0.0)):\($0.1)" }.joined(separator: ",")
        let mergeText = merges.map { pairMerges ? "[\(jsonString($0.0)),\(jsonString($0.1))]" : jsonString("\($0.0) \($0.1)") }
            .joined(separator: ",")
        let pre = llama3Pre
            ? #"{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"# + jsonString(HFTokenizerMetadata.llama3Regex)
                + #"},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]}"#
            : #"{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}"#
        return #"{"version":"1.0","added_tokens":[{"id":260,"content":"<s>","special":true},{"id":261,"content":"</s>","special":true},"#
            + #"{"id":262,"content":"<|eot_id|>","special":true},{"id":263,"content":"user text","special":false}],"#
            + #""pre_tokenizer":\#(pre),"model":{"type":"BPE","vocab":{\#(vocabText)},"merges":[\#(mergeText)]}}"#
    }

    // SentencePiece protobuf by hand (sentencepiece_model.proto field numbers, see SentencePieceModel.swift)
    static func varint(_ v: UInt64) -> [UInt8] {
        var v = v, out: [UInt8] = []
        repeat { out.append(UInt8(v & 0x7f) | (v >= 0x80 ? 0x80 : 0)); v >>= 7 } while v > 0
        return out
    }
    static func field(_ n: Int, bytes: [UInt8]) -> [UInt8] { varint(UInt64(n << 3 | 2)) + varint(UInt64(bytes.count)) + bytes }
    static func field(_ n: Int, varint v: UInt64) -> [UInt8] { varint(UInt64(n << 3)) + varint(v) }
    static func field(_ n: Int, float f: Float) -> [UInt8] {
        varint(UInt64(n << 3 | 5)) + withUnsafeBytes(of: f.bitPattern.littleEndian) { Array($0) }
    }

    static func sentencePieceModel() -> [UInt8] {
        var pieces: [(String, Float, UInt64)] = [("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3)]
        for b in 0..<256 { pieces.append(("<0x" + String(b, radix: 16, uppercase: true).leftPadded(to: 2) + ">", 0, 6)) }
        for (i, p) in ["▁", "▁t", "he", "▁the", "é", "中"].enumerated() { pieces.append((p, -Float(i), 1)) }
        var out: [UInt8] = []
        for p in pieces {
            out += field(1, bytes: field(1, bytes: Array(p.0.utf8)) + field(2, float: p.1) + field(3, varint: p.2))
        }
        out += field(2, bytes: field(40, varint: 0) + field(41, varint: 1) + field(42, varint: 2))
        out += field(3, bytes: field(3, varint: 1))
        return out
    }

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        [
            ("bpe-llama3.json", [0] + Array(bpeJSON(llama3Pre: true, pairMerges: false).utf8)),
            ("bpe-gpt2-pairmerges-config.json", [2 | 4] + Array(bpeJSON(llama3Pre: false, pairMerges: true).utf8)),
            ("spm.model", [1] + sentencePieceModel()),
            ("spm-config.model", [3 | 8] + sentencePieceModel()),
        ]
    }
}
