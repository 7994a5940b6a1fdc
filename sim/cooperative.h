// Blocking code (a user's client program) on virtual time: each program
// runs on a thread of its own, but only one thread runs at any moment. The
// simulation's thread resumes a program, and waits until the program
// blocks again (in a client call that waits for the simulated cluster) or
// ends; a blocked program waits until the simulation resumes it. Control
// passes back and forth explicitly, so a run is as deterministic as the
// simulation itself, whatever the OS scheduler does.
//
//   CooperativeThread program([] { ... CooperativeThread::Current()->Block(); ... });
//   program.Resume();   // runs it until it blocks or ends
//
// A run that ends while a program is blocked cancels it: Block() throws
// ProgramCancelled, which unwinds the program (code that catches every
// exception must let this one through).
#ifndef ETC_SIM_COOPERATIVE_H_
#define ETC_SIM_COOPERATIVE_H_

#include <functional>
#include <semaphore>
#include <string>
#include <thread>

namespace etc::sim {

struct ProgramCancelled {};

class CooperativeThread {
 public:
  explicit CooperativeThread(std::function<void()> body);
  // Cancels the program if it has not ended, and waits for its thread.
  ~CooperativeThread();
  CooperativeThread(const CooperativeThread&) = delete;
  CooperativeThread& operator=(const CooperativeThread&) = delete;

  // From the simulation's thread: runs the program until it blocks or
  // ends. Does nothing once it ended.
  void Resume();
  bool finished() const { return finished_; }
  // What the program threw, other than ProgramCancelled ("" if nothing).
  const std::string& uncaught() const { return uncaught_; }

  // From the program: hands control back to the simulation until the next
  // Resume. Throws ProgramCancelled when the run is over.
  void Block();
  // The program running on this thread (nullptr on any other thread).
  static CooperativeThread* Current();

 private:
  void Main();

  std::function<void()> body_;
  // The simulation releases `resume_` and waits on `yielded_`; the program
  // the other way round. Each hand-over orders all memory before it.
  std::binary_semaphore resume_{0};
  std::binary_semaphore yielded_{0};
  bool cancelled_ = false;
  bool finished_ = false;
  std::string uncaught_;
  std::thread thread_;
};

}  // namespace etc::sim

#endif  // ETC_SIM_COOPERATIVE_H_
