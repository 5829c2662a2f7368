import NIOCore
import NIOHTTP1

/// Answers HTTP/1.0 requests as HTTP/1.0. Hummingbird works in swift-http-types,
/// which carry no version, so every response leaves as HTTP/1.1 — and a streamed
/// one (no Content-Length) as `Transfer-Encoding: chunked`, which RFC 9112 §7.1
/// forbids towards an HTTP/1.0 client. This handler sits between NIO's HTTP/1
/// decoder/encoder and Hummingbird's conversion: it remembers each request's
/// version (in order, for pipelined requests), gives its response that version —
/// NIO's encoder then frames a body without Content-Length by closing the
/// connection instead of chunking — and closes the connection after a response
/// that needs it (no length, or a 1.0 client that did not ask for keep-alive).
final class HTTP10Handler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var versions: [(version: HTTPVersion, keepAlive: Bool)] = []
    private var closeAfterResponse = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            versions.append((head.version, head.isKeepAlive))
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where head.status.code >= 200:
            let request = versions.isEmpty ? nil : versions.removeFirst()
            guard let request, request.version.major == 1, request.version.minor == 0 else {
                context.write(data, promise: promise)
                return
            }
            head.version = .http1_0
            let hasLength = head.headers.contains(name: "content-length")
            closeAfterResponse = !hasLength || !request.keepAlive
            head.headers.remove(name: "transfer-encoding")
            head.headers.replaceOrAdd(name: "connection", value: closeAfterResponse ? "close" : "keep-alive")
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end where closeAfterResponse:
            closeAfterResponse = false
            let written = promise ?? context.eventLoop.makePromise()
            context.writeAndFlush(data, promise: written)
            written.futureResult.whenComplete { _ in context.close(promise: nil) }
        default:
            context.write(data, promise: promise)
        }
    }
}
