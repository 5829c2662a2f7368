/// A session used in a way that would mix conversations up: refused before
/// any cache changes.
public enum SessionError: Error, Equatable, CustomStringConvertible {
    /// The session was made by another model (its cache has another shape).
    case foreignSession
    /// The same session appears twice in one step.
    case duplicateSession
    /// A generation loop already runs on this session (from another thread or task).
    case busy

    public var description: String {
        switch self {
        case .foreignSession: return "the session belongs to another model"
        case .duplicateSession: return "a session appears twice in one step (give each sequence its own session)"
        case .busy: return "the session is already generating (one generation at a time per session; make another session)"
        }
    }
}
