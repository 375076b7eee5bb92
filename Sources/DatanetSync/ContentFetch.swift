import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore

/// One contribution's content to fetch: its record id, and the kind and id of its root.
public struct FetchItem: Sendable {
    public var contribution: RecordID, kind: ObjectKind, root: ObjectID
    public init(contribution: RecordID, kind: ObjectKind, root: ObjectID) { (self.contribution, self.kind, self.root) = (contribution, kind, root) }
    /// The content of contribution `id`, whose record is `c`.
    public init(_ id: RecordID, _ c: Contribution) { self.init(contribution: id, kind: c.contentKind.object, root: c.content) }
}

/// What one fetch brought.
public struct FetchSummary: Sendable, Equatable {
    public var objects = 0
    public var bytes: UInt64 = 0
    /// Contributions the peer would not give the content of: the error code and message of its
    /// refusal (a Datanet or contribution it does not serve, an object it does not hold).
    public var failed = [RecordID: SyncError]()
    /// The near-duplicate sketches of contributions whose content is a blob of one chunk that
    /// arrived here as text, made as it arrived (`Ledger.flagFetched` takes them).
    public var sketches = [RecordID: TextSketch]()

    public init() {}
}

extension SyncClient {
    /// Fetches what this store lacks of contribution `contribution`'s content (`kind` and
    /// `root`) in `d` from the peer. Throws when the peer refuses an object this store needs or
    /// sends one it did not ask for; what arrived before stays.
    public func fetch(_ d: DatanetID, contribution: RecordID, kind: ObjectKind, root: ObjectID, into ledger: Ledger,
                      window: Int = 4, progress: ((FetchSummary) -> Void)? = nil) throws -> FetchSummary {
        let s = try fetch(d, [FetchItem(contribution: contribution, kind: kind, root: root)], into: ledger, window: window, progress: progress)
        if let e = s.failed[contribution] { throw e }
        return s
    }

    /// Fetches what this store lacks of the content of `items` (contributions of `d`), up to
    /// `window` requests in flight, each asking for up to `maximumFetch` objects across
    /// contributions (so many small contributions cost few requests). A contribution the peer
    /// refuses is named in `failed` and the others go on; a peer that sends an object not asked
    /// for ends the fetch (thrown). What arrived stays: chunks as answers come (8 MiB or 200 ms
    /// of them a transaction), blobs and trees at the end (children first).
    public func fetch(_ d: DatanetID, _ items: [FetchItem], into ledger: Ledger,
                      window: Int = 8, progress: ((FetchSummary) -> Void)? = nil) throws -> FetchSummary {
        var summary = FetchSummary()
        try fetchRound(d, items, into: ledger, window: window, summary: &summary, progress: progress)
        // An object two contributions share is asked for under the first that needs it; if
        // that one failed, the others ask again under their own (one more round).
        if !summary.failed.isEmpty {
            let failed = summary.failed
            let again = try items.filter { item in
                guard failed[item.contribution] == nil else { return false }
                return try !Self.missing([SyncMessage.ObjectRef(item.kind, item.root)], in: ledger).isEmpty
            }
            if !again.isEmpty { try fetchRound(d, again, into: ledger, window: window, summary: &summary, progress: progress) }
        }
        return summary
    }

    /// One pass of `fetch` over `items`, adding to `summary`.
    func fetchRound(_ d: DatanetID, _ items: [FetchItem], into ledger: Ledger, window: Int,
                    summary: inout FetchSummary, progress: ((FetchSummary) -> Void)?) throws {
        // Work in order: objects to ask for under one contribution; `pending` is every object
        // queued, in flight or received, so none is asked for twice.
        var queue = [(contribution: RecordID, refs: [SyncMessage.ObjectRef])](), head = 0
        var pending = Set<SyncMessage.ObjectRef>()
        // A contribution whose content is a blob of one chunk: that chunk's bytes are its text,
        // sketched on another thread as it arrives rather than read back to be flagged.
        var withRoot = [ObjectID: [RecordID]](), sketchFor = [ObjectID: [RecordID]]()
        let sketching = ArrivingSketches<RecordID>(datanet: d)
        // Sketched on other threads while answers keep arriving; all done before this returns.
        defer { summary.sketches.merge(sketching.taken()) { a, _ in a } }
        for item in items where item.kind == .blob { withRoot[item.root, default: []].append(item.contribution) }
        for item in items {
            let refs = try Self.missing([SyncMessage.ObjectRef(item.kind, item.root)], in: ledger).filter { pending.insert($0).inserted }
            if !refs.isEmpty { queue.append((item.contribution, refs)) }
        }
        func nextRequest() -> [SyncMessage.FetchPart] {
            var parts = [SyncMessage.FetchPart](), total = 0
            while head < queue.count, total < SyncMessage.maximumFetch {
                let (c, refs) = queue[head]
                if summary.failed[c] != nil { head += 1; continue }
                if parts.contains(where: { $0.contribution == c }) { break }
                let take = Array(refs.prefix(SyncMessage.maximumFetch - total))
                if refs.count > take.count { queue[head].refs = Array(refs.dropFirst(take.count)) } else { head += 1 }
                parts.append(SyncMessage.FetchPart(c, take))
                total += take.count
            }
            return parts
        }
        var inFlight = [(id: UInt64, parts: [SyncMessage.FetchPart])]()
        var parents = [(SyncMessage.ObjectRef, [UInt8])]()
        // Chunks received (each checked against its id) are stored a transaction at a time on
        // the keeper's thread: once 8 MiB have gathered or, when an answer comes, 200 ms have
        // passed since the last batch, and the keeper is free (else up to 32 MiB gather), so a
        // fetch of many small contributions does not pay a durable commit an answer and a large
        // one does not wait for the disk. What arrived is kept even when the connection then
        // fails (or stalls until its read deadline).
        let keeper = ChunkKeeper(ledger.store)
        var unkept = [(ObjectKind, ObjectID, [UInt8])](), unkeptBytes = 0, lastKept = ContinuousClock.now
        func keepChunks() throws {
            try keeper.keep(unkept)
            (unkept, unkeptBytes, lastKept) = ([], 0, ContinuousClock.now)
        }
        defer {
            try? keepChunks()
            try? keeper.finish()
        }
        // An answer's objects are checked against their bytes on other threads while the next
        // answer is received; it is settled (taken in, its chunks handed to the keeper, what it
        // left out asked again) once that one has arrived, or when none is in flight.
        typealias Checks = [(id: ObjectID, children: [(ObjectKind, ObjectID)])]
        var arrived: (parts: [SyncMessage.FetchPart], owner: [SyncMessage.ObjectRef: RecordID], sent: [SyncMessage.SentObject],
                      checks: Parallel.Running<Checks>)?
        func settle(_ parts: [SyncMessage.FetchPart], _ owner: [SyncMessage.ObjectRef: RecordID], _ sent: [SyncMessage.SentObject], _ checked: Checks) throws {
            var got = Set<SyncMessage.ObjectRef>(), chunks = [(ObjectKind, ObjectID, [UInt8])](), children = [RecordID: [SyncMessage.ObjectRef]]()
            var texts = [(bytes: [UInt8], contributions: [RecordID])]()
            for (o, (oid, named)) in zip(sent, checked) {
                let ref = SyncMessage.ObjectRef(o.kind, oid)
                guard let c = owner[ref], got.insert(ref).inserted else {
                    throw SyncError.unexpected("the peer sent \(o.kind) \(oid.hex), which was not asked for")
                }
                if o.kind == .chunk {
                    chunks.append((.chunk, oid, o.bytes))
                    if let cs = sketchFor.removeValue(forKey: oid) { texts.append((o.bytes, cs)) }
                } else {
                    parents.append((ref, o.bytes))
                    children[c, default: []] += named.map { SyncMessage.ObjectRef($0.0, $0.1) }
                    if o.kind == .blob, let cs = withRoot[oid], named.count == 1, named[0].0 == .chunk { sketchFor[named[0].1, default: []] += cs }
                }
                summary.objects += 1
                summary.bytes += UInt64(o.bytes.count)
            }
            sketching.add(texts.map { ($0.contributions, $0.bytes) })
            unkept += chunks
            unkeptBytes += chunks.reduce(0) { $0 + $1.2.count }
            if unkeptBytes >= 32 << 20 || (unkeptBytes >= 8 << 20 || ContinuousClock.now - lastKept >= .milliseconds(200)) && keeper.isIdle {
                try keepChunks()
            }
            for p in parts where summary.failed[p.contribution] == nil {
                // What the answer's bound left out, asked for again, and what the blobs and
                // trees received name that is not here; an object received stays in `pending`
                // (a blob or tree is stored only at the end), so none is fetched twice.
                let deferred = p.wanted.filter { !got.contains($0) }
                let more = try Self.missing(children[p.contribution] ?? [], in: ledger).filter { pending.insert($0).inserted }
                if !deferred.isEmpty || !more.isEmpty { queue.append((p.contribution, deferred + more)) }
            }
            progress?(summary)
        }
        func settleArrived() throws {
            guard let a = arrived else { return }
            arrived = nil
            try settle(a.parts, a.owner, a.sent, try a.checks.wait())
        }
        // An answer that arrived whole is taken in even when the next one never comes (a cut or
        // stalled connection): its checked chunks reach the keeper before it finishes.
        defer { try? settleArrived() }
        while true {
            while inFlight.count < max(1, window) {
                let parts = nextRequest()
                if parts.isEmpty { break }
                inFlight.append((try request(.fetch(d, parts: parts)), parts))
            }
            guard !inFlight.isEmpty else {
                if arrived == nil { break }
                try settleArrived()
                continue
            }
            let (id, parts) = inFlight.removeFirst()
            var owner = [SyncMessage.ObjectRef: RecordID]()
            for p in parts { for r in p.wanted { owner[r] = p.contribution } }
            let reply: SyncMessage
            do { reply = try answer(id) } catch let e as SyncError {
                // A request is refused whole only when it names one contribution, or a Datanet
                // not served: each contribution it names has failed.
                guard case .refused = e else { throw e }
                for p in parts { summary.failed[p.contribution] = e }
                continue
            }
            guard case .objects(let sent, let refused) = reply.body else { throw SyncError.unexpected("a fetch was not answered with objects") }
            // A server always sends or refuses at least one object asked for: an answer that
            // settles none would have the same request asked again forever.
            guard !sent.isEmpty || refused.contains(where: { owner[$0] != nil }) else {
                throw SyncError.unexpected("the peer answered a fetch with no object and no refusal")
            }
            for r in refused {
                guard let c = owner[r] else { continue }
                if summary.failed[c] == nil {
                    summary.failed[c] = .refused(code: "missing", message: "the peer does not serve \(r.kind) \(r.id.hex) of contribution \(c.hex)")
                }
            }
            // Checked on every core for a large answer (a blob's chunks), else on one.
            let grain = sent.reduce(0) { $0 + $1.bytes.count } >= 1 << 20 ? 1 : Int.max
            let checks = Parallel.start { () throws -> Checks in
                try Parallel.map(sent, grain: grain) { o in try ObjectStore.validated(o.kind, o.bytes) }.map { ($0.id, $0.children) }
            }
            do { try settleArrived() } catch {
                _ = try? checks.wait()
                throw error
            }
            arrived = (parts, owner, sent, checks)
        }
        try keepChunks()
        try keeper.finish()
        try ledger.store.keep(parents.reversed().map { ($0.0.kind, $0.0.id, $0.1) })
    }

    /// Of `refs`, the objects this store lacks, and below blobs and trees it holds, what they
    /// name that it lacks (a fetch cut short resumes there).
    static func missing(_ refs: [SyncMessage.ObjectRef], in ledger: Ledger) throws -> [SyncMessage.ObjectRef] {
        var out = [SyncMessage.ObjectRef](), seen = Set<ObjectID>()
        var stack = refs
        while let r = stack.popLast() {
            guard seen.insert(r.id).inserted else { continue }
            switch r.kind {
            case .chunk:
                if try ledger.store.chunk(r.id) == nil { out.append(r) }
            case .blob:
                if let m = try ledger.store.blob(r.id) { stack += m.chunks.map { SyncMessage.ObjectRef(.chunk, $0.id) } } else { out.append(r) }
            case .tree:
                if let t = try ledger.store.tree(r.id) { stack += t.entries.map { SyncMessage.ObjectRef($0.kind, $0.id) } } else { out.append(r) }
            }
        }
        return out
    }
}

extension SyncClient {
    /// Fetches the content a pull's records-only bundles left out (`ranges`): that of their
    /// intakes and of the pending contributions (an honest server sends their bundle with
    /// content; a lying one may not), unless held or erased, and the artifacts of their models
    /// when the peer holds them (as a bundle carries them). Near-duplicates among what arrived
    /// are flagged as a clone would have flagged them, also when the fetch ends early. Returns
    /// the summary and the contributions (not models) whose content the peer would not give.
    func fetchLeftOut(_ d: DatanetID, ranges: [Range<UInt64>], into ledger: Ledger,
                      progress: ((_ done: UInt64, _ total: UInt64) -> Void)?) throws -> (summary: FetchSummary, failed: [(RecordID, SyncError)]) {
        var items = [(item: FetchItem, size: UInt64)](), models = Set<RecordID>(), seen = Set<RecordID>()
        for r in ranges where !r.isEmpty {
            try ledger.reader.forEachLeafSummary(d, from: r.lowerBound, to: r.upperBound, kinds: [.intake, .model]) { _, leaf in
                switch leaf {
                case .intake(_, let id, let c) where seen.insert(id).inserted:
                    items.append((FetchItem(id, c), c.size))
                case .other(let l):
                    if let m = l.model, case .model(let r) = try Record(m.record), seen.insert(m.record.id).inserted {
                        items.append((FetchItem(contribution: m.record.id, kind: .blob, root: r.artifact), r.artifactSize))
                        models.insert(m.record.id)
                    }
                default: break
                }
                return true
            }
        }
        for e in try ledger.reader.pendingRecords(d) where e.kind == .contribution && seen.insert(e.id).inserted {
            if case .contribution(let c) = try Record(e) {
                items.append((FetchItem(e.id, c), c.size))
            }
        }
        let missing = try items.filter { x in
            try !ledger.reader.holdsObject(x.item.root, kind: x.item.kind)
                && (models.contains(x.item.contribution) || !ledger.reader.isErased(d, contribution: x.item.contribution, content: x.item.root))
        }
        guard !missing.isEmpty else { return (FetchSummary(), []) }
        let total = missing.reduce(UInt64(0)) { $0.addingSaturating($1.size) }
        let ids = missing.map(\.item.contribution).filter { !models.contains($0) }
        let got: FetchSummary
        do {
            got = try fetch(d, missing.map(\.item), into: ledger) { progress?($0.bytes, max(total, $0.bytes)) }
        } catch {
            try? ledger.flagFetched(d, ids)
            throw error
        }
        try ledger.flagFetched(d, ids, sketches: got.sketches)
        let failed = got.failed.filter { !models.contains($0.key) }.sorted { $0.key < $1.key }
        return (got, failed)
    }
}
