!> Shared state of the oceanbridge Fortran API: kinds, codes, options and the
!! single error path. Both backends (MPI, OASIS3-MCT) use it.
module obr_core
   use, intrinsic :: iso_fortran_env, only: dp => real64, i8 => int64, error_unit, output_unit
   use, intrinsic :: iso_c_binding, only: c_int
   use mpi
   implicit none
   private

   public :: dp, i8
   public :: OBR_IN, OBR_OUT, OBR_OK, OBR_RECVD, OBR_SENT
   public :: OBR_ERR_DEF, OBR_ERR_TIMEOUT, OBR_ERR_VALUE, OBR_ERR_USAGE, OBR_ERR_MPI
   public :: OBR_NAME_LEN, OBR_MSG_LEN
   public :: OBR_NAN_OFF, OBR_NAN_WARN, OBR_NAN_ERROR, OBR_WAIT_AUTO, OBR_WAIT_SPIN, OBR_WAIT_YIELD
   public :: core_timeout, core_nan_policy, core_put_direct, core_ring, core_wait_mode, core_name, core_world_rank, core_last_error
   public :: core_read_env, core_fail, core_abort, core_warn, core_report, core_count_bad, core_copy_count, core_itoa
   public :: core_nit000, core_dt, core_check_field, core_nan_verdict, core_oasis_time, core_valid_name
   public :: core_leave_cores

   integer, parameter :: OBR_IN = 1            !< field received by this component
   integer, parameter :: OBR_OUT = 2           !< field sent by this component
   integer, parameter :: OBR_OK = 0            !< success, nothing exchanged
   integer, parameter :: OBR_RECVD = 3         !< get completed (OASIS's code)
   integer, parameter :: OBR_SENT = 4          !< put posted (OASIS's code)
   integer, parameter :: OBR_ERR_DEF = -1      !< inconsistent definitions
   integer, parameter :: OBR_ERR_TIMEOUT = -2  !< a blocking wait reached the timeout
   integer, parameter :: OBR_ERR_VALUE = -3    !< NaN/Inf in a put
   integer, parameter :: OBR_ERR_USAGE = -4    !< call out of order, unknown id, wrong shape
   integer, parameter :: OBR_ERR_MPI = -5      !< the transport failed
   integer, parameter :: OBR_NAME_LEN = 64
   integer, parameter :: OBR_MSG_LEN = 2048
   integer, parameter :: OBR_NAN_OFF = 0, OBR_NAN_WARN = 1, OBR_NAN_ERROR = 2
   integer, parameter :: OBR_WAIT_AUTO = 0, OBR_WAIT_SPIN = 1, OBR_WAIT_YIELD = 2
   character(len=*), parameter :: PUT_MODES(2) = ['copy  ', 'direct']
   character(len=*), parameter :: NAN_POLICIES(3) = ['off  ', 'warn ', 'error']   ! index - 1 = OBR_NAN_*
   character(len=*), parameter :: WAIT_MODES(3) = ['auto ', 'spin ', 'yield']     ! index - 1 = OBR_WAIT_*

   interface
      function c_setpriority(which, who, prio) bind(c, name='setpriority') result(r)
         import :: c_int
         integer(c_int), value :: which, who, prio
         integer(c_int) :: r
      end function c_setpriority
   end interface
   integer(c_int), parameter :: PRIO_PROCESS = 0, LOWEST_PRIORITY = 19

   ! The five settings below are the deploy config's [run] timeout, nan_policy, put_mode, put_ring and wait_mode:
   ! `oceanbridge launch` writes them as $OBRIDGE_TIMEOUT, _NAN_POLICY, _PUT_MODE, _RING, _WAIT (core_read_env).
   ! These initial values are the fallbacks when a variable is unset and must equal the defaults of the Python
   ! declaration, bridge/transport/env.py (TIMEOUT, NAN_POLICY, PUT_MODE, PUT_RING, WAIT_MODE), which
   ! bridge/config/config.py's RunSection takes; tests/deploy/test_deploy_coupling_keys.py compares them.
   real(dp) :: core_timeout = 300._dp                  !< seconds for every blocking wait
   integer :: core_nan_policy = OBR_NAN_ERROR          !< what a put does with NaN/Inf
   logical :: core_put_direct = .false.                !< put sends from the caller's array and waits (no copy)
   integer :: core_ring = 4                            !< puts a field may have in flight before a put waits
   integer :: core_wait_mode = OBR_WAIT_AUTO           !< how waits poll: OBR_WAIT_AUTO, _SPIN or _YIELD
   character(len=OBR_NAME_LEN) :: core_name = '?'      !< this component's name
   integer :: core_world_rank = -1                     !< rank in MPI_COMM_WORLD
   character(len=OBR_MSG_LEN) :: core_last_error = ''  !< message of the last error returned through kinfo
   integer :: core_nit000 = 1                          !< host's first step index (obr_def_time)
   real(dp) :: core_dt = 0._dp                         !< host's time step in seconds, 0 = not given (obr_def_time)

contains

   !> This process has left the coupled job: lower its priority to the lowest (nice 19), so that its
   !! wait in MPI_Finalize for the others (Open MPI polls there) takes no contended core from the
   !! components still running, such as a worker training on after the ocean's last step.
   subroutine core_leave_cores()
      integer(c_int) :: ignored
      ignored = c_setpriority(PRIO_PROCESS, 0_c_int, LOWEST_PRIORITY)   ! a refusal changes nothing: ignored
   end subroutine core_leave_cores

   !> Take defaults from OBRIDGE_TIMEOUT, OBRIDGE_PUT_MODE, OBRIDGE_NAN_POLICY, OBRIDGE_RING, OBRIDGE_WAIT
   !! (set by `oceanbridge launch` from the deploy config's [run] keys; unset, the initial values above stay),
   !! and the OASIS time axis from OBRIDGE_NIT000 / OBRIDGE_DT (for hosts that do not call obr_def_time).
   !! A value that is set but malformed is an error naming the variable and the value, never ignored.
   subroutine core_read_env(kinfo)
      integer, intent(out), optional :: kinfo     !< status: OBR_OK or OBR_ERR_USAGE (abort when absent)
      character(len=OBR_MSG_LEN) :: msg
      real(dp) :: t
      integer :: k
      msg = ''
      if (env_number('OBRIDGE_DT', 'a time step in seconds > 0', .false., .true., t, msg)) core_dt = t
      if (env_number('OBRIDGE_NIT000', 'a whole number (the first step index)', .true., .false., t, msg)) &
         core_nit000 = nint(t)
      if (env_number('OBRIDGE_TIMEOUT', 'a number of seconds > 0', .false., .true., t, msg)) core_timeout = t
      if (env_number('OBRIDGE_RING', 'a whole number >= 1 (the put ring depth)', .true., .true., t, msg)) &
         core_ring = nint(t)
      if (env_choice('OBRIDGE_PUT_MODE', PUT_MODES, k, msg)) core_put_direct = k == 2
      if (env_choice('OBRIDGE_NAN_POLICY', NAN_POLICIES, k, msg)) core_nan_policy = k - 1
      if (env_choice('OBRIDGE_WAIT', WAIT_MODES, k, msg)) core_wait_mode = k - 1
      if (present(kinfo)) kinfo = OBR_OK
      if (msg /= '') call core_fail(OBR_ERR_USAGE, msg, kinfo)
   end subroutine core_read_env

   !> True, with the value, when environment variable `name` is set and well formed; else a malformed value sets msg.
   logical function env_number(name, want, whole, positive, t, msg)
      character(len=*), intent(in) :: name        !< the variable
      character(len=*), intent(in) :: want        !< what it must hold, for the message
      logical, intent(in) :: whole                !< only digits (and a leading minus unless positive)
      logical, intent(in) :: positive             !< the value must be > 0
      real(dp), intent(out) :: t                  !< its value
      character(len=*), intent(inout) :: msg      !< the first error found, unchanged if fine
      character(len=64) :: val
      character(len=:), allocatable :: chars
      integer :: ios
      t = 0
      env_number = env_text(name, val, msg)
      if (.not. env_number) return
      chars = '0123456789'
      if (.not. whole) chars = chars//'.eEdD+-'
      if (.not. positive) chars = chars//'-'
      ios = 1
      if (len_trim(val) > 0 .and. verify(trim(adjustl(val)), chars) == 0) read (val, *, iostat=ios) t
      if (ios /= 0 .or. (positive .and. .not. t > 0) .or. abs(t) > huge(1)) then
         env_number = .false.
         if (msg == '') msg = name//'='''//trim(val)//''': must be '//want
      end if
   end function env_number

   !> True, with its index in `choices`, when environment variable `name` is set to one of them; else sets msg.
   logical function env_choice(name, choices, k, msg)
      character(len=*), intent(in) :: name        !< the variable
      character(len=*), intent(in) :: choices(:)  !< the values it may hold
      integer, intent(out) :: k                   !< index of its value in choices
      character(len=*), intent(inout) :: msg      !< the first error found, unchanged if fine
      character(len=64) :: val
      k = 0
      env_choice = env_text(name, val, msg)
      if (.not. env_choice) return
      k = findloc(choices, trim(adjustl(val)), 1)
      env_choice = k > 0
      if (.not. env_choice .and. msg == '') then
         msg = name//'='''//trim(val)//''': must be one of'
         do k = 1, size(choices)
            msg = trim(msg)//' '//trim(choices(k))
         end do
      end if
   end function env_choice

   !> True, with its text, when environment variable `name` is set; a value too long for val sets msg.
   logical function env_text(name, val, msg)
      character(len=*), intent(in) :: name        !< the variable
      character(len=*), intent(out) :: val        !< its value
      character(len=*), intent(inout) :: msg      !< the first error found, unchanged if fine
      integer :: stat
      call get_environment_variable(name, val, status=stat)
      env_text = stat == 0
      if (stat == -1 .and. msg == '') msg = name//'='''//trim(val)//'...'': the value is too long'
   end function env_text

   !> True when `name` is a valid component or field name: 1..OBR_NAME_LEN characters, no blanks.
   pure logical function core_valid_name(name)
      character(len=*), intent(in) :: name        !< the name
      core_valid_name = len_trim(name) > 0 .and. len_trim(name) <= OBR_NAME_LEN .and. index(trim(name), ' ') == 0
   end function core_valid_name

   !> Report an error: through kinfo when the caller passed it, else abort the job.
   subroutine core_fail(code, msg, kinfo)
      integer, intent(in) :: code                 !< one of the OBR_ERR_* codes
      character(len=*), intent(in) :: msg         !< what failed: names the field, rank and cause
      integer, intent(out), optional :: kinfo     !< the caller's status argument
      core_last_error = msg
      if (present(kinfo)) then
         kinfo = code
      else
         call core_abort(msg)
      end if
   end subroutine core_fail

   !> Print the message with component and rank, then abort every component.
   subroutine core_abort(msg)
      character(len=*), intent(in) :: msg         !< why the run stops
      integer :: ierr
      logical :: started
      call core_report('ABORT', msg)
      flush (output_unit)
      call MPI_Initialized(started, ierr)
      if (started) call MPI_Abort(MPI_COMM_WORLD, 1, ierr)
      error stop 1   ! before MPI_Init (a bad $OBRIDGE_* value): mpirun stops the job on this exit
   end subroutine core_abort

   !> Print a warning with component and rank.
   subroutine core_warn(msg)
      character(len=*), intent(in) :: msg         !< the warning
      call core_report('WARNING', msg)
   end subroutine core_warn

   !> Print a labelled message with component and rank (or 'obr_init' before they are known) on stderr.
   subroutine core_report(label, msg)
      character(len=*), intent(in) :: label       !< 'ERROR', 'WARNING', ...
      character(len=*), intent(in) :: msg         !< the message
      if (core_world_rank < 0) then
         write (error_unit, '(a)') 'oceanbridge '//label//' (obr_init): '//trim(msg)
      else
         write (error_unit, '(a)') 'oceanbridge '//label//' (component '''//trim(core_name)//''', world rank '// &
            trim(core_itoa(core_world_rank))//'): '//trim(msg)
      end if
      flush (error_unit)
   end subroutine core_report

   !> Number of NaN/Inf values in a buffer: one fast pass (core_copy_scan's sum of a*0), the exact
   !! count only when that finds one.
   pure function core_count_bad(a) result(nbad)
      real(dp), intent(in), contiguous :: a(:)    !< values to check
      integer :: nbad
      if (scan_sum(a) == 0) then
         nbad = 0
      else
         nbad = count(.not. abs(a) <= huge(a))   ! a NaN fails every comparison
      end if
   end function core_count_bad

   !> dst = src, adding to s the sum of src*0: 0 for finite values, NaN as soon as one is NaN/Inf.
   !! Eight scalar accumulators on contiguous arrays vectorise at -O2 (a sum of src*0 or a count
   !! does not: floating-point sums cannot be reordered there, 3x slower); the copy rides along.
   pure subroutine core_copy_scan(src, dst, s)
      real(dp), intent(in), contiguous :: src(:)  !< values to copy and check
      real(dp), intent(out), contiguous :: dst(:) !< their copy, same size
      real(dp), intent(inout) :: s                !< running check sum, NaN once a value was NaN/Inf
      integer :: i, n
      real(dp) :: s1, s2, s3, s4, s5, s6, s7, s8
      n = size(src)
      s1 = 0; s2 = 0; s3 = 0; s4 = 0; s5 = 0; s6 = 0; s7 = 0; s8 = 0
      do i = 1, n - 7, 8
         dst(i:i + 7) = src(i:i + 7)
         s1 = s1 + src(i)*0; s2 = s2 + src(i + 1)*0; s3 = s3 + src(i + 2)*0; s4 = s4 + src(i + 3)*0
         s5 = s5 + src(i + 4)*0; s6 = s6 + src(i + 5)*0; s7 = s7 + src(i + 6)*0; s8 = s8 + src(i + 7)*0
      end do
      do i = n - mod(n, 8) + 1, n
         dst(i) = src(i)
         s1 = s1 + src(i)*0
      end do
      s = s + ((s1 + s2) + (s3 + s4)) + ((s5 + s6) + (s7 + s8))
   end subroutine core_copy_scan

   !> dst = src; when check, nbad grows by the NaN/Inf values of src (core_copy_scan, exact count only if any).
   pure subroutine core_copy_count(src, dst, check, nbad)
      real(dp), intent(in), contiguous :: src(:)  !< values to copy and check
      real(dp), intent(out), contiguous :: dst(:) !< their copy, same size
      logical, intent(in) :: check                !< count NaN/Inf (the NaN policy is not off)
      integer, intent(inout) :: nbad              !< NaN/Inf values found, added to
      real(dp) :: s
      s = 0
      call core_copy_scan(src, dst, s)
      if (check .and. .not. s == 0) nbad = nbad + core_count_bad(dst)
   end subroutine core_copy_count

   !> Sum of a*0 (0, or NaN when a holds a NaN/Inf), as core_copy_scan without the copy.
   pure function scan_sum(a) result(s)
      real(dp), intent(in), contiguous :: a(:)    !< values to check
      real(dp) :: s
      integer :: i, n
      real(dp) :: s1, s2, s3, s4, s5, s6, s7, s8
      n = size(a)
      s1 = 0; s2 = 0; s3 = 0; s4 = 0; s5 = 0; s6 = 0; s7 = 0; s8 = 0
      do i = 1, n - 7, 8
         s1 = s1 + a(i)*0; s2 = s2 + a(i + 1)*0; s3 = s3 + a(i + 2)*0; s4 = s4 + a(i + 3)*0
         s5 = s5 + a(i + 4)*0; s6 = s6 + a(i + 5)*0; s7 = s7 + a(i + 6)*0; s8 = s8 + a(i + 7)*0
      end do
      do i = n - mod(n, 8) + 1, n
         s1 = s1 + a(i)*0
      end do
      s = ((s1 + s2) + (s3 + s4)) + ((s5 + s6) + (s7 + s8))
   end function scan_sum

   !> Check a put/get against its field: direction, and an array of shape (ni, nj[, nlev]).
   subroutine core_check_field(name, fdir, nlev, extent, dir, what, kinfo, msg, f2, f3)
      character(len=*), intent(in) :: name        !< field name
      integer, intent(in) :: fdir, nlev           !< the field's direction and levels
      integer, intent(in) :: extent(2)            !< this rank's ni, nj
      integer, intent(in) :: dir                  !< the direction the call needs
      character(len=*), intent(in) :: what        !< 'put' or 'get'
      integer, intent(out) :: kinfo               !< OBR_OK or OBR_ERR_USAGE
      character(len=*), intent(out) :: msg        !< the reason when kinfo < 0
      real(dp), intent(in), optional :: f2(:, :)  !< a 2-D field
      real(dp), intent(in), optional :: f3(:, :, :) !< a 3-D field
      integer :: got(3)
      kinfo = OBR_ERR_USAGE
      msg = ''
      got = 1
      if (present(f2)) got(1:2) = shape(f2)
      if (present(f3)) got = shape(f3)
      if (fdir /= dir) then
         msg = 'field '''//trim(name)//''': '//what//' on a field of the other direction'
      else if (any(got /= [extent, nlev])) then
         msg = 'field '''//trim(name)//''': '//what//' with an array of shape ('//core_itoa(got(1))//','// &
               core_itoa(got(2))//','//core_itoa(got(3))//'), expected ('//core_itoa(extent(1))//','// &
               core_itoa(extent(2))//','//core_itoa(nlev)//') = (ni, nj, nlev) of this rank''s partition'
      else
         kinfo = OBR_OK
      end if
   end subroutine core_check_field

   !> Apply the NaN policy to a put holding nbad NaN/Inf values.
   subroutine core_nan_verdict(name, step, nbad, kinfo, msg)
      character(len=*), intent(in) :: name        !< field name
      integer, intent(in) :: step                 !< host model step
      integer, intent(in) :: nbad                 !< NaN/Inf values found
      integer, intent(out) :: kinfo               !< OBR_OK or OBR_ERR_VALUE
      character(len=*), intent(out) :: msg        !< the reason when kinfo < 0
      kinfo = OBR_OK
      msg = ''
      if (nbad == 0 .or. core_nan_policy == OBR_NAN_OFF) return
      msg = 'field '''//trim(name)//''': put at step '//core_itoa(step)//' holds '//core_itoa(nbad)//' NaN/Inf value(s)'
      if (core_nan_policy == OBR_NAN_ERROR) then
         kinfo = OBR_ERR_VALUE
      else
         call core_warn(trim(msg)//'; sent anyway (NaN policy warn)')
      end if
   end subroutine core_nan_verdict

   !> OASIS time of the state after host step `step`: (step - nit000 + 1)*dt seconds, so the initial
   !! state (step nit000 - 1) is at t = 0; an error before it or past the 32-bit range.
   subroutine core_oasis_time(name, step, tsec, kinfo, msg)
      character(len=*), intent(in) :: name        !< field name, for the message
      integer, intent(in) :: step                 !< host model step
      integer, intent(out) :: tsec                !< seconds since the first step
      integer, intent(out) :: kinfo               !< OBR_OK or OBR_ERR_USAGE
      character(len=*), intent(out) :: msg        !< the reason when kinfo < 0
      real(dp) :: t
      t = real(step - core_nit000 + 1, dp)*core_dt
      kinfo = OBR_OK
      msg = ''
      tsec = 0
      if (step < core_nit000 - 1 .or. t > real(huge(tsec), dp)) then
         kinfo = OBR_ERR_USAGE
         write (msg, '(a,es10.3,a)') 'field '''//trim(name)//''': step '//core_itoa(step)//' is '// &
            'before the initial state nit000 - 1 = '//core_itoa(core_nit000 - 1)//' or its time ', t, &
            ' s overflows OASIS''s 32-bit '// &
            'seconds (about 68 years): run long spin-ups in restart segments'
      else
         tsec = nint(t)
      end if
   end subroutine core_oasis_time

   !> An integer as trimmed text.
   pure function core_itoa(i) result(s)
      integer, intent(in) :: i                    !< the integer
      character(len=:), allocatable :: s
      character(len=24) :: buf
      write (buf, '(i0)') i
      s = trim(buf)
   end function core_itoa

end module obr_core
