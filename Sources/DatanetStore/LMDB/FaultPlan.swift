import DatanetObjects
#if DATANET_FAULTS
/// Debug builds only: makes the Nth database write or commit of an environment fail with EIO,
/// once (transient) or from then on (persistent), as SQLite's fault-injection loops do.
public final class FaultPlan: @unchecked Sendable {
    private var countdown: Int
    private let persistent: Bool
    /// True once a fault has been injected.
    public private(set) var fired = false

    /// Fails operation number `failAt` (1-based) and, if `persistent`, every one after it.
    public init(failAt: Int, persistent: Bool) {
        countdown = failAt
        self.persistent = persistent
    }

    func tick() throws {
        if fired {
            if persistent { throw LMDBError.io }
            return
        }
        countdown -= 1
        if countdown == 0 {
            fired = true
            throw LMDBError.io
        }
    }
}
#endif
