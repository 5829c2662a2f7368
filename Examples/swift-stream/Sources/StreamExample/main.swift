// Streams a completion: `swift run StreamExample MODEL.gguf "prompt" [tokens]`.
import BitNet
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let args = CommandLine.arguments
guard args.count >= 3 else {
    print("usage: StreamExample MODEL.gguf PROMPT [MAX_TOKENS]")
    exit(2)
}
let model = try BitNetModel(weights: try ModelWeights(path: args[1]), contextLength: 256)
let tokenizer = try Tokenizer(gguf: model.weights.file)
let session = try model.makeSession()
var stops = tokenizer.endOfGenerationIDs
if let eos = tokenizer.eosID { stops.insert(eos) }
let generator = Generator(session: session, stopTokens: stops)
var sampling = SamplingParameters.greedy
sampling.seed = 7
var text = ""
for try await piece in generator.textStream(prompt: tokenizer.encode(args[2]), tokenizer: tokenizer,
                                            maxTokens: args.count > 3 ? Int(args[3]) ?? 32 : 32, sampling: sampling) {
    print(piece, terminator: "")
    text += piece
}
print()
print("[\(text.utf8.count) bytes, \(session.count) positions in the session's cache]")
