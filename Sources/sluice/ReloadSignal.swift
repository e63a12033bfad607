import Dispatch
import Foundation
import Synchronization

/// SIGHUP: reload the config file's policies, one reload at a time (a second SIGHUP during a
/// reload runs after it). Connections are not touched.
final class ReloadSignal: Sendable {
    let reload: @Sendable () async -> Void
    let running = Mutex<(busy: Bool, again: Bool)>((false, false))
    nonisolated(unsafe) var source: (any DispatchSourceSignal)?

    init(_ reload: @escaping @Sendable () async -> Void) {
        self.reload = reload
        signal(SIGHUP, SIG_IGN)  // the dispatch source sees it instead of the default action (exit)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler { [weak self] in self?.received() }
        source.resume()
        self.source = source
    }

    func received() {
        let start = running.withLock { r -> Bool in
            if r.busy {
                r.again = true
                return false
            }
            r.busy = true
            return true
        }
        guard start else { return }
        Task {
            while true {
                await reload()
                let more = running.withLock { r -> Bool in
                    if r.again {
                        r.again = false
                        return true
                    }
                    r.busy = false
                    return false
                }
                if !more { break }
            }
        }
    }

    func stop() {
        source?.cancel()
    }
}
