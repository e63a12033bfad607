/// What `SEM.FEEDBACK` has taught one semantic entry, as vCache learns a threshold per entry:
/// good verdicts let it answer a little below the bar in force (`MINSCORE` or the namespace's
/// default), bad verdicts raise its threshold above the scores at which it was wrong.
///
/// **The error bound.** After a bad verdict on a hit at score *s*, the entry never again answers
/// a query that scores *s* or less against it (its threshold stays above *s* by ``margin``),
/// whatever good verdicts come later. Good verdicts lower its threshold by ``relaxStep`` each,
/// at most ``maxRelax`` below the bar in force, and a bad verdict takes that back at once.
/// A bad verdict above 1 − ``margin`` (the entry's own prompt, or a query the embedder cannot
/// tell from it) leaves nothing the entry may answer: it is deleted.
public struct Verdicts: Sendable, Hashable {
    /// How far below the bar in force the entry may answer (earned by good verdicts).
    public var relax: Float = 0
    /// The highest score at which the entry was judged a wrong answer (meaningful when bad > 0).
    public var worstBad: Float = 0
    public var good = 0, bad = 0

    /// How far above a bad score the threshold goes.
    public static let margin: Float = 0.005
    /// How much each good verdict lowers the threshold.
    public static let relaxStep: Float = 0.02
    /// How far below the bar in force good verdicts may take the threshold, at most.
    public static let maxRelax: Float = 0.1

    public init(relax: Float = 0, worstBad: Float = 0, good: Int = 0, bad: Int = 0) {
        self.relax = min(max(relax.isFinite ? relax : 0, 0), Self.maxRelax)
        self.worstBad = worstBad.isFinite ? min(max(worstBad, -1), 1) : 1  // NaN: judged wrong at any score
        self.good = max(good, 0)
        self.bad = max(bad, 0)
    }

    /// A bad verdict at the entry's own prompt: nothing is left that it may answer.
    public var condemnsEntry: Bool { bad > 0 && worstBad + Self.margin > 1 }

    public mutating func record(score: Float, good isGood: Bool) {
        if isGood {
            good = good < Int.max ? good + 1 : good
            relax = min(relax + Self.relaxStep, Self.maxRelax)
        } else {
            bad = bad < Int.max ? bad + 1 : bad
            worstBad = max(worstBad, score.isFinite ? min(max(score, -1), 1) : 1)
            relax = 0
        }
    }

    /// These verdicts joined with another instance's for the same entry: order-insensitive and
    /// idempotent (a stream replayed, or two instances judging at once, end the same way
    /// everywhere). The highest bad score and the counts are maxima — so a bad verdict is never
    /// lost to a concurrent good one — and the relaxing is that of the state with more verdicts
    /// (bad ones first), the smaller on a tie.
    public func merged(with other: Verdicts) -> Verdicts {
        let mine = (bad, good), theirs = (other.bad, other.good)
        let relax = mine == theirs ? min(self.relax, other.relax) : (mine > theirs ? self.relax : other.relax)
        return Verdicts(relax: relax, worstBad: Swift.max(worstBad, other.worstBad), good: Swift.max(good, other.good), bad: Swift.max(bad, other.bad))
    }

    /// The threshold of an entry with these verdicts when the bar in force is `bar`.
    public func threshold(bar: Float) -> Float {
        bad > 0 ? max(bar - relax, worstBad + Self.margin) : bar - relax
    }

    /// The threshold `entry` answers at when the bar in force is `bar`.
    public static func threshold(of entry: SemanticNamespace.Entry, bar: Float) -> Float {
        entry.verdicts?.threshold(bar: bar) ?? bar
    }

    /// "relax worstBad good bad", as the SQLite file and the Redis stream keep it.
    public var encoded: String { "\(relax) \(worstBad) \(good) \(bad)" }

    /// nil: not four fields of the right kinds.
    public init?(encoded: String) {
        let f = encoded.split(separator: " ")
        guard f.count == 4, let relax = Float(f[0]), let worstBad = Float(f[1]), let good = Int(f[2]), let bad = Int(f[3]) else { return nil }
        self.init(relax: relax, worstBad: worstBad, good: good, bad: bad)
    }
}
