import DatanetCrypto
import DatanetRecords
import DatanetStore

/// The band entries one bulk flagging of a Datanet wrote (a clone's run of bundles, a fetch of
/// its content into a store that had sketched none of it), kept in memory so that each new
/// sketch finds its candidates without a lookup in the band table.
///
/// It is used only while it is the whole of that Datanet's part of the table: it starts in a
/// transaction where the table holds none of the Datanet's entries, and goes off for good when
/// a transaction finds the table holding another number of entries than the memo's last write
/// left (another writer added some it does not hold; only dropping an empty store's tables
/// deletes band entries). A transaction that wrote through it and then aborted leaves the table
/// short of its count, so it goes off then too, unless another writer made up the difference
/// meanwhile: a caller that runs a transaction's body again turns it off (`turnOff`). It also
/// goes off past `limit` entries, so its memory stays bounded; the table then answers.
final class BandMemo {
    /// The most entries it keeps (by default 2^23: about 500,000 text contributions, some 200 MB).
    let limit: Int
    let datanet: DatanetID
    private enum State { case unchecked, active(entries: Int), off }
    private var state = State.unchecked
    /// Folded band value → its newest entry; entry → the entry before it with the same folded
    /// value (-1: none) and the index of its contribution in `ids`.
    private var newest = [UInt64: Int32]()
    private var previous = [Int32](), owner = [Int32]()
    private var ids = [RecordID]()

    init(datanet: DatanetID, limit: Int = 1 << 23) { (self.datanet, self.limit) = (datanet, limit) }

    /// Whether the memo stands for the table's entries of its Datanet in `txn`.
    func isActive(_ txn: Transaction, _ bands: Table) throws -> Bool {
        switch state {
        case .off:
            return false
        case .unchecked:
            state = try txn.lastKey(bands, prefix: datanet.bytes) == nil ? .active(entries: try txn.count(bands)) : .off
        case .active(let entries):
            if try txn.count(bands) != entries { state = .off }
        }
        guard case .active = state else {
            turnOff()
            return false
        }
        return true
    }

    /// Off for good, its entries dropped.
    func turnOff() {
        state = .off
        (newest, previous, owner, ids) = ([:], [], [], [])
    }

    /// Called once the entries `add` recorded are written in `txn`.
    func wrote(_ txn: Transaction, _ bands: Table) throws {
        if owner.count > limit { turnOff() }
        if case .active = state { state = .active(entries: try txn.count(bands)) }
    }

    /// The contributions with an entry under one of `keys`, and perhaps a few more: band
    /// values are folded to 64 bits with their band number, so two distinct values may meet.
    /// More candidates only cost time (each is compared slot by slot); none is ever missing.
    func candidates(_ keys: [BandKey]) -> Set<RecordID> {
        var found = Set<RecordID>()
        for key in keys {
            var e = newest[Self.fold(key)] ?? -1
            while e >= 0 {
                found.insert(ids[Int(owner[Int(e)])])
                e = previous[Int(e)]
            }
        }
        return found
    }

    /// Records the entries of contribution `id` under `keys`.
    func add(_ id: RecordID, _ keys: [BandKey]) {
        let who = Int32(ids.count)
        ids.append(id)
        for key in keys {
            let e = Int32(owner.count)
            owner.append(who)
            previous.append(newest.updateValue(e, forKey: Self.fold(key)) ?? -1)
        }
    }

    private static func fold(_ key: BandKey) -> UInt64 { key.hash ^ (UInt64(key.band) &* 0x9E37_79B9_7F4A_7C15) }
}
