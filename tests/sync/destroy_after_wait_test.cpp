// Destroying a primitive as soon as the waiting side's call returns, while the waking side may
// still be inside its own call: the completion-semaphore and reply-channel idioms, and the
// reference-counted object that carries its own mutex (std allows destroying an unlocked
// mutex, and a semaphore or latch once nobody waits on it; Go lets a receiver drop a channel).
// Each primitive is heap-allocated and deleted by the waiter, so a waker that touches it after
// letting the waiter run is a use-after-free: ASan reports it, a release build corrupts the
// heap. Waiters are fibers and plain threads; wakers are fibers on another worker.
#include <chrono>
#include <shared_mutex>
#include <thread>

#include <weft/weft.hpp>

#include "weft_test.hpp"

namespace {

class DestroyAfterWaitTest : public weft_test::RuntimeTest {};
INSTANTIATE_TEST_SUITE_P(Workers, DestroyAfterWaitTest, ::testing::Values(1u, 2u, 4u), weft_test::workers_name);

long rounds() { return weft_test::sized(20000, 5000, 2000); }

// Runs `round(i)` `n` times on a plain thread (the test's) and on a fiber.
template <class Round>
void on_thread_and_fiber(weft::runtime& rt, long n, Round round) {
  for (long i = 0; i < n; ++i) round(i);
  rt.block_on([&] {
    for (long i = 0; i < n; ++i) round(i);
  });
}

TEST_P(DestroyAfterWaitTest, ChannelReceiverDeletesTheChannel) {
  for (std::size_t cap : {std::size_t{0}, std::size_t{1}}) {
    on_thread_and_fiber(rt(), rounds(), [&](long i) {
      auto* ch = new weft::channel<long>(cap);
      rt().spawn([ch, i] { ch->send(i); }).detach();
      long v = -1;
      ASSERT_EQ(ch->recv(v), weft::channel_status::ok);
      delete ch;  // recv returned: the exchange is complete
      ASSERT_EQ(v, i);
    });
  }
}

TEST_P(DestroyAfterWaitTest, ChannelSenderDeletesTheChannel) {
  on_thread_and_fiber(rt(), rounds(), [&](long i) {
    auto* ch = new weft::channel<long>(0);
    auto* got = new std::atomic<long>(-1);
    weft::wait_group* done = new weft::wait_group;
    done->add(1);
    rt().spawn([ch, got, done] {
      long v = -1;
      ch->recv(v);
      got->store(v);
      done->done();
    }).detach();
    ASSERT_EQ(ch->send(i), weft::channel_status::ok);
    delete ch;  // send returned: the receiver has the value and never touches ch again
    done->wait();
    delete done;
    ASSERT_EQ(got->load(), i);
    delete got;
  });
}

TEST_P(DestroyAfterWaitTest, ClosedChannelDeletedByTheWaiter) {
  on_thread_and_fiber(rt(), rounds() / 4, [&](long) {
    auto* ch = new weft::channel<int>(0);
    rt().spawn([ch] { ch->close(); }).detach();
    int v = 0;
    ASSERT_EQ(ch->recv(v), weft::channel_status::closed);
    delete ch;
  });
}

TEST_P(DestroyAfterWaitTest, SemaphoreLatchAndWaitGroupDeletedByTheWaiter) {
  on_thread_and_fiber(rt(), rounds(), [&](long) {
    auto* s = new weft::binary_semaphore(0);
    rt().spawn([s] { s->release(); }).detach();
    s->acquire();
    delete s;

    auto* l = new weft::latch(1);
    rt().spawn([l] { l->count_down(); }).detach();
    l->wait();
    delete l;

    auto* wg = new weft::wait_group;
    wg->add(1);
    rt().spawn([wg] { wg->done(); }).detach();
    wg->wait();
    delete wg;
  });
}

TEST_P(DestroyAfterWaitTest, LastOwnerOfAReferenceCountedObjectDeletesItsMutex) {
  struct object {
    weft::mutex m;
    int refs = 2;
  };
  on_thread_and_fiber(rt(), rounds(), [&](long) {
    auto* o = new object;
    auto drop = [o] {
      o->m.lock();
      bool last = --o->refs == 0;
      o->m.unlock();
      if (last) delete o;
    };
    rt().spawn(drop).detach();
    drop();
  });
}

TEST_P(DestroyAfterWaitTest, MutexHandedOverToAStarvingWaiterIsDeletedByIt) {
  // A waiter that has waited more than 1 ms is handed the lock directly by unlock().
  on_thread_and_fiber(rt(), weft_test::sized(300, 100, 50), [&](long) {
    auto* m = new weft::mutex;
    m->lock();
    rt().spawn([m] {
      std::this_thread::sleep_for(std::chrono::microseconds(1500));  // blocks its worker on purpose
      m->unlock();
    }).detach();
    m->lock();
    m->unlock();
    delete m;
  });
}

TEST_P(DestroyAfterWaitTest, SharedMutexDeletedByAWokenReader) {
  on_thread_and_fiber(rt(), rounds(), [&](long) {
    auto* m = new weft::shared_mutex;
    m->lock();
    rt().spawn([m] { m->unlock(); }).detach();
    m->lock_shared();
    m->unlock_shared();
    delete m;
  });
}

TEST_P(DestroyAfterWaitTest, ConditionVariableAndFutureDeletedByTheWaiter) {
  on_thread_and_fiber(rt(), rounds() / 2, [&](long i) {
    struct box {
      weft::mutex m;
      weft::condition_variable cv;
      bool ready = false;
    };
    auto* b = new box;
    rt().spawn([b] {
      std::lock_guard lk(b->m);
      b->ready = true;
      b->cv.notify_one();
    }).detach();
    {
      std::unique_lock lk(b->m);
      b->cv.wait(lk, [&] { return b->ready; });
    }
    delete b;

    auto* p = new weft::promise<long>;
    weft::future<long> f = p->get_future();
    rt().spawn([p, i] {
      p->set_value(i);
      delete p;
    }).detach();
    ASSERT_EQ(f.get(), i);
  });
}

}  // namespace
