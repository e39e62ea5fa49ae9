#if ! defined key_obridge_oasis
!> How the MPI backend waits on MPI requests: always against the timeout (no exchange hangs
!! silently), spinning or yielding the core as bridge/transport/wait.py does on the Python side:
!!   spin:  poll without pause, as MPI's own Wait does (every process of the node has a core);
!!   yield: poll yielding the core for SPIN_WINDOW seconds and while pieces are arriving, so a
!!          transfer on its way completes at full speed, then back off to sleeps (10 us .. 1 ms),
!!          so an idle receiver leaves an oversubscribed core to the ocean.
!! choose_wait_mode picks one at init ($OBRIDGE_WAIT: auto, spin or yield).
module obr_mpi_wait
   use, intrinsic :: iso_c_binding, only: c_int, c_size_t, c_int64_t
   use obr_core
   use mpi
   implicit none
   private

   public :: choose_wait_mode, wait_collective, wait_some

   interface
      function c_usleep(usec) bind(c, name='usleep') result(r)
         import :: c_int
         integer(c_int), value :: usec
         integer(c_int) :: r
      end function c_usleep
      function c_sched_yield() bind(c, name='sched_yield') result(r)
         import :: c_int
         integer(c_int) :: r
      end function c_sched_yield
      function c_sched_getaffinity(pid, setsize, mask) bind(c, name='sched_getaffinity') result(r)
         import :: c_int, c_size_t, c_int64_t
         integer(c_int), value :: pid
         integer(c_size_t), value :: setsize
         integer(c_int64_t), intent(out) :: mask(*)
         integer(c_int) :: r
      end function c_sched_getaffinity
   end interface

   !> Seconds of yield-polling before a wait backs off to sleeps: a transfer that
   !! is already on its way completes at full speed, a long wait leaves the core idle.
   real(dp), parameter :: SPIN_WINDOW = 2.0e-3_dp
   integer, parameter :: AFFINITY_WORDS = 16            !< a glibc cpu_set_t: 1024 bits
   logical :: spin = .false.                            !< waits poll without pause (see choose_wait_mode)

contains

   !> Spin in waits when $OBRIDGE_WAIT is spin, or auto and the job's processes on this node are no more
   !! than the cores in the union of their affinity masks; else yield and back off (wait.py's configure).
   !! Collective over MPI_COMM_WORLD: Comm_split_type(SHARED), Allreduce(BOR) of the masks, Comm_free.
   subroutine choose_wait_mode()
      integer :: node, nprocs, ierr
      integer(c_int64_t) :: mask(AFFINITY_WORDS), union(AFFINITY_WORDS)
      call MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, core_world_rank, MPI_INFO_NULL, node, ierr)
      mask = 0
      if (c_sched_getaffinity(0_c_int, int(8*AFFINITY_WORDS, c_size_t), mask) /= 0) mask = 0   ! unknown: yield
      call MPI_Allreduce(mask, union, AFFINITY_WORDS, MPI_INTEGER8, MPI_BOR, node, ierr)
      call MPI_Comm_size(node, nprocs, ierr)
      call MPI_Comm_free(node, ierr)
      spin = core_wait_mode == OBR_WAIT_SPIN .or. (core_wait_mode == OBR_WAIT_AUTO .and. nprocs <= sum(popcnt(union)))
   end subroutine choose_wait_mode

   !> Wait for a non-blocking collective, at most the timeout (no silent hang at init or enddef).
   subroutine wait_collective(req, what, kinfo, limit)
      integer, intent(inout) :: req              !< the collective's request
      character(len=*), intent(in) :: what       !< what was waited for, for the message
      integer, intent(out) :: kinfo              !< OBR_OK or OBR_ERR_TIMEOUT
      real(dp), intent(in), optional :: limit    !< seconds to wait, default the timeout
      integer :: ierr, pause
      logical :: done
      real(dp) :: t0, tmax
      t0 = MPI_Wtime()
      tmax = core_timeout
      if (present(limit)) tmax = limit
      pause = 0
      kinfo = OBR_OK
      do
         call MPI_Test(req, done, MPI_STATUS_IGNORE, ierr)
         if (done) return
         if (MPI_Wtime() - t0 > tmax) exit
         if (pause > 0) ierr = c_usleep(int(pause, c_int))
         pause = min(max(2*pause, 10), 1000)
      end do
      kinfo = OBR_ERR_TIMEOUT
      write (core_last_error, '(a,f0.1,a)') trim(what)//' (timeout ', tmax, ' s)'
   end subroutine wait_collective

   !> Complete the requests, spinning or yield-polling with backoff (choose_wait_mode). True when all
   !! completed; false when the timeout passed first (the ones left are not MPI_REQUEST_NULL).
   logical function wait_some(req)
      integer, intent(inout) :: req(:)           !< the requests; MPI_REQUEST_NULL once completed
      integer :: outcount, ierr, pause
      integer :: indices(size(req))
      logical :: streaming
      real(dp) :: t0
      t0 = MPI_Wtime()
      pause = 0
      streaming = .false.
      wait_some = .true.
      do
         call MPI_Testsome(size(req), req, outcount, indices, MPI_STATUSES_IGNORE, ierr)
         if (outcount == MPI_UNDEFINED .or. all(req == MPI_REQUEST_NULL)) return
         if (outcount > 0) streaming = .true.   ! the rest of the transfer follows: keep polling
         if (MPI_Wtime() - t0 > core_timeout) exit
         if (spin) cycle
         if (streaming .or. MPI_Wtime() - t0 < SPIN_WINDOW) then
            ierr = c_sched_yield()   ! let an oversubscribed core's other ranks run
            cycle
         end if
         if (pause > 0) ierr = c_usleep(int(pause, c_int))
         pause = min(max(2*pause, 10), 1000)
      end do
      wait_some = .false.
   end function wait_some

end module obr_mpi_wait
#endif
