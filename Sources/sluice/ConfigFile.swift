import Foundation
import SluiceDomain
import SluiceServer
import TOMLKit

/// `--config sluice.toml`: server settings (the flags' names, without dashes in front) under
/// `[server]`, and named policies under `[limits.NAME]`, `[budgets.NAME]`, `[breakers.NAME]`
/// and `[namespaces.NAME]`. Flags and `SLUICE_*` variables win over the file. An unknown table
/// or key is an error (a typo must not silently leave a default in force).
struct ConfigFile {
    /// Setting name (as the flag, e.g. `l1-max-memory`) → value as text.
    var server: [String: String] = [:]
    var policies = PolicySet()

    struct Problem: Error, CustomStringConvertible {
        let description: String
        init(_ text: String) { description = text }
    }

    static func load(path: String, serverKeys: Set<String>) throws -> ConfigFile {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw Problem("cannot read \(path): \(error.localizedDescription)")
        }
        // toml++ reads a C string: a NUL would end the file there without a word.
        if text.utf8.contains(0) { throw Problem("\(path): contains a NUL byte") }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw Problem("\(path):\(error.source.begin.line):\(error.source.begin.column): \(error.description)")
        } catch {
            throw Problem("\(path): \(error)")
        }
        return try ConfigFile(table, serverKeys: serverKeys)
    }

    /// No file: no [server] settings, no policies.
    init() {}

    init(_ root: TOMLTable, serverKeys: Set<String>) throws {
        for key in root.keys {
            guard let section = root[key]?.table else { throw Problem("'\(key)' must be a table ([\(key)])") }
            switch key {
            case "server":
                for name in section.keys {
                    guard serverKeys.contains(name) else {
                        throw Problem("[server] has no setting '\(name)' (known: \(serverKeys.sorted().joined(separator: ", ")))")
                    }
                    server[name] = try Self.text(section[name], "server.\(name)")
                }
            case "limits":
                for name in section.keys {
                    let t = try Self.policyTable(section, name, "limits", allowed: ["rpm", "tpm", "request_burst", "token_burst", "dryrun"])
                    if try Self.flag(t["dryrun"], "limits.\(name).dryrun") { policies.dryRun.insert("limits." + name) }
                    let rpm = try Self.integer(t["rpm"], "limits.\(name).rpm") ?? 0
                    let tpm = try Self.integer(t["tpm"], "limits.\(name).tpm") ?? 0
                    policies.limits[name] = LimitSpec(requestsPerMinute: rpm, tokensPerMinute: tpm,
                                                      requestBurst: try Self.integer(t["request_burst"], "limits.\(name).request_burst"),
                                                      tokenBurst: try Self.integer(t["token_burst"], "limits.\(name).token_burst"))
                }
            case "budgets":
                for name in section.keys {
                    let t = try Self.policyTable(section, name, "budgets", allowed: ["budget", "period", "period_ms", "near", "dryrun"])
                    if try Self.flag(t["dryrun"], "budgets.\(name).dryrun") { policies.dryRun.insert("budgets." + name) }
                    guard let amount = try Self.number(t["budget"], "budgets.\(name).budget") else { throw Problem("budgets.\(name) needs budget") }
                    guard let budget = Money(Substring(String(amount))) else { throw Problem("budgets.\(name).budget must be 0 to 1e12") }
                    var period = BudgetPeriod.day
                    if let word = t["period"] {
                        switch word.string {
                        case "day": period = .day
                        case "week": period = .week
                        case "month": period = .month
                        default: throw Problem("budgets.\(name).period must be \"day\", \"week\" or \"month\" (or give period_ms)")
                        }
                    }
                    if let ms = try Self.integer(t["period_ms"], "budgets.\(name).period_ms") {
                        guard t["period"] == nil else { throw Problem("budgets.\(name): period or period_ms, not both") }
                        period = .rolling(milliseconds: ms)
                    }
                    policies.budgets[name] = PolicySet.Budget(budget: budget, period: period,
                                                              near: try Self.number(t["near"], "budgets.\(name).near") ?? 0.8)
                }
            case "breakers":
                for name in section.keys {
                    let t = try Self.policyTable(section, name, "breakers",
                                                 allowed: ["window", "min_calls", "failure_rate", "slow_ms", "slow_rate", "open_ms", "probes"])
                    var change = BreakerPolicyChange()
                    change.window = try Self.integer(t["window"], "breakers.\(name).window").map { Int(clamping: $0) }
                    change.minimumCalls = try Self.integer(t["min_calls"], "breakers.\(name).min_calls").map { Int(clamping: $0) }
                    change.probes = try Self.integer(t["probes"], "breakers.\(name).probes").map { Int(clamping: $0) }
                    change.failureRate = try Self.number(t["failure_rate"], "breakers.\(name).failure_rate")
                    change.slowCallRate = try Self.number(t["slow_rate"], "breakers.\(name).slow_rate")
                    change.slowCallMilliseconds = try Self.integer(t["slow_ms"], "breakers.\(name).slow_ms")
                    change.openMilliseconds = try Self.integer(t["open_ms"], "breakers.\(name).open_ms")
                    policies.breakers[name] = change
                }
            case "namespaces":
                for name in section.keys {
                    let t = try Self.policyTable(section, name, "namespaces", allowed: ["min_score", "max_entries"])
                    policies.namespaces[name] = PolicySet.Namespace(
                        minScore: try Self.number(t["min_score"], "namespaces.\(name).min_score").map { Float($0) },
                        maxEntries: try Self.integer(t["max_entries"], "namespaces.\(name).max_entries").map { Int(clamping: $0) })
                }
            default:
                throw Problem("unknown table [\(key)] (known: server, limits, budgets, breakers, namespaces)")
            }
        }
        if let problem = policies.problem() { throw Problem(problem) }
    }

    static func policyTable(_ section: TOMLTable, _ name: String, _ kind: String, allowed: Set<String>) throws -> TOMLTable {
        guard let t = section[name]?.table else { throw Problem("\(kind).\(name) must be a table ([\(kind).\"\(name)\"])") }
        if let unknown = t.keys.first(where: { !allowed.contains($0) }) {
            throw Problem("\(kind).\(name) has no setting '\(unknown)' (known: \(allowed.sorted().joined(separator: ", ")))")
        }
        return t
    }

    static func integer(_ value: (any TOMLValueConvertible)?, _ what: String) throws -> Int64? {
        guard let value else { return nil }
        guard let n = value.int else { throw Problem("\(what) must be a whole number") }
        return Int64(n)
    }

    static func flag(_ value: (any TOMLValueConvertible)?, _ what: String) throws -> Bool {
        guard let value else { return false }
        guard let b = value.bool else { throw Problem("\(what) must be true or false") }
        return b
    }

    static func number(_ value: (any TOMLValueConvertible)?, _ what: String) throws -> Double? {
        guard let value else { return nil }
        if let n = value.int { return Double(n) }
        guard let x = value.double, x.isFinite else { throw Problem("\(what) must be a number") }
        return x
    }

    static func text(_ value: (any TOMLValueConvertible)?, _ what: String) throws -> String {
        if let s = value?.string { return s }
        if let n = value?.int { return String(n) }
        if let b = value?.bool { return b ? "true" : "false" }
        if let x = value?.double { return String(x) }
        throw Problem("\(what) must be a string, number or boolean")
    }
}
