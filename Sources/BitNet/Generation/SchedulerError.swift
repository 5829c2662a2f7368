/// A request the ``BatchScheduler`` turns away at submission; nothing was run.
public enum SchedulerError: Error, Equatable, CustomStringConvertible {
    /// Every slot is busy and `waiting` requests already wait: the most the queue holds.
    case queueFull(waiting: Int, slots: Int)
    /// The prompt needs more positions than one slot's context holds.
    case promptTooLong(promptTokens: Int, slotContext: Int)
    case emptyPrompt
    /// ``BatchScheduler/close()`` was called.
    case closed

    public var description: String {
        switch self {
        case .queueFull(let waiting, let slots):
            return "all \(slots) slots are busy and \(waiting) requests are waiting, the most the queue holds; try again later"
        case .promptTooLong(let prompt, let context):
            return "the prompt is \(prompt) tokens but a slot's context holds \(context)"
        case .emptyPrompt:
            return "the prompt gives no tokens to start from"
        case .closed:
            return "the scheduler is shutting down"
        }
    }
}
