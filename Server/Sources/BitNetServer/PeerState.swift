import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Whether a connection's client closed its side. NIO reports the client's FIN as
/// `ChannelEvent.inputClosed` (Hummingbird allows half-closure), which is all a
/// server can see of a client that went away until it writes to it. A
/// non-streamed request writes nothing until it is done, so it is cancelled on
/// that event (its slot frees at the next step); a stream is not — a client that
/// half-closes and keeps reading gets its stream, and a client that is really gone
/// makes the next write fail, which cancels it.
final class PeerState: Sendable {
    private let closed = NIOLockedValueBox(false)
    var isInputClosed: Bool { closed.withLockedValue { $0 } }
    func markInputClosed() { closed.withLockedValue { $0 = true } }
}

/// Looks up the ``PeerState`` of a request's channel.
final class PeerRegistry: Sendable {
    private let peers = NIOLockedValueBox([ObjectIdentifier: PeerState]())
    private let accepted = NIOLockedValueBox(0)

    /// Connections accepted since start, and open now (for `/metrics`: with keep-alive,
    /// far fewer than requests).
    var connections: (accepted: Int, open: Int) {
        (accepted.withLockedValue { $0 }, peers.withLockedValue { $0.count })
    }

    func state(for channel: any Channel) -> PeerState? {
        peers.withLockedValue { $0[ObjectIdentifier(channel)] }
    }

    fileprivate func register(_ channel: any Channel, _ state: PeerState) {
        accepted.withLockedValue { $0 += 1 }
        peers.withLockedValue { $0[ObjectIdentifier(channel)] = state }
    }

    fileprivate func remove(_ channel: any Channel) {
        _ = peers.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// One handler per connection, added to Hummingbird's HTTP/1 pipeline.
    func makeHandler() -> PeerStateHandler { PeerStateHandler(registry: self) }
}

/// Passes everything through; records the client's FIN in its connection's ``PeerState``.
final class PeerStateHandler: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny
    typealias InboundOut = NIOAny
    private let registry: PeerRegistry
    private let state = PeerState()

    init(registry: PeerRegistry) { self.registry = registry }

    func handlerAdded(context: ChannelHandlerContext) {
        registry.register(context.channel, state)
        // HTTP10Handler must see NIO's own HTTP/1 types: right after the decoder
        // (Hummingbird's hook adds handlers only after its conversion to HTTP types).
        let pipeline = context.pipeline.syncOperations
        if let decoder = try? pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self) {
            try? pipeline.addHandler(HTTP10Handler(), position: .after(decoder))
        }
    }
    func handlerRemoved(context: ChannelHandlerContext) { registry.remove(context.channel) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.fireChannelRead(data) }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .some(.inputClosed) = event as? ChannelEvent { state.markInputClosed() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        state.markInputClosed()
        context.fireChannelInactive()
    }
}
