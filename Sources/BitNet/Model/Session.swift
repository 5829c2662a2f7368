/// One conversation with a model: its KV cache and position. Sessions are
/// cheap next to the model (the weights and step scratch are shared; a cache
/// reserves its memory and touches pages only as positions fill), so a server
/// keeps one per slot and an app one per chat.
///
/// Everything that reads or changes the cache runs under the model's lock, so
/// sessions may be used from any thread; calls on sessions of one model are
/// serialized (batch them with ``BitNetModel/step(_:)`` or ``BatchScheduler``
/// to run them together). A generation loop claims its session (``Generator``
/// does), so a second loop on the same session is refused with
/// ``SessionError/busy`` instead of interleaving two conversations.
public final class Session: @unchecked Sendable {
    public let model: BitNetModel
    /// Mutated only under `model.lock`.
    let cache: KVCache
    /// Whether a generation loop owns the session (under `model.lock`).
    private var claimed = false

    init(model: BitNetModel, cache: KVCache) {
        self.model = model
        self.cache = cache
    }

    /// Positions the cache holds (the next token goes there).
    public var count: Int { model.lock.withLock { cache.count } }
    /// Positions the cache can hold.
    public var contextLength: Int { cache.capacity }
    public var kvPrecision: KVCache.Precision { cache.precision }
    /// Bytes reserved for the cache.
    public var cacheByteCount: Int { cache.byteCount }

    /// Runs `tokens` at the next positions, appending them to the cache. Returns
    /// the logits of the last token (vocab floats), or of every token (tokens.count
    /// × vocab, row-major) when `allLogits`.
    public func forward(_ tokens: [Int32], allLogits: Bool = false) throws -> [Float] {
        try model.step([SequenceInput(session: self, tokens: tokens, logits: allLogits ? .all : .last)])[0]
    }

    /// Forgets everything (a new conversation).
    public func reset() { model.lock.withLock { cache.count = 0 } }

    /// Keeps the first `length` positions (a shared prefix, or dropping a rejected continuation).
    public func truncate(to length: Int) { model.lock.withLock { cache.count = max(0, min(cache.count, length)) } }

    /// Marks the session as owned by one generation loop; throws when another owns it.
    func claim() throws {
        try model.lock.withLock {
            guard !claimed else { throw SessionError.busy }
            claimed = true
        }
    }

    func release() { model.lock.withLock { claimed = false } }
}
