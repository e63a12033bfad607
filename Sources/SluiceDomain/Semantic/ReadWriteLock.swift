#if canImport(Glibc)
import Glibc
#endif

/// pthread's read-write lock: many readers or one writer.
final class ReadWriteLock: @unchecked Sendable {
    private let rw = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)

    init() {
        rw.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(rw, nil)
    }

    deinit {
        pthread_rwlock_destroy(rw)
        rw.deallocate()
    }

    func lockRead() { pthread_rwlock_rdlock(rw) }
    func lockWrite() { pthread_rwlock_wrlock(rw) }
    func unlock() { pthread_rwlock_unlock(rw) }
}
