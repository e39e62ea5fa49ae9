!> Shared state of the oceanbridge Fortran API: kinds, codes, options and the
!! single error path. Both backends (MPI, OASIS3-MCT) use it.
module obr_core
   use, intrinsic :: iso_fortran_env, only: dp => real64, i8 => int64, error_unit, output_unit
   use, intrinsic :: ieee_arithmetic, only: ieee_is_finite
   use mpi
   implicit none
   private

   public :: dp, i8
   public :: OBR_IN, OBR_OUT, OBR_OK, OBR_RECVD, OBR_SENT
   public :: OBR_ERR_DEF, OBR_ERR_TIMEOUT, OBR_ERR_VALUE, OBR_ERR_USAGE, OBR_ERR_MPI
   public :: OBR_NAME_LEN, OBR_MSG_LEN
   public :: OBR_NAN_OFF, OBR_NAN_WARN, OBR_NAN_ERROR
   public :: core_timeout, core_nan_policy, core_put_direct, core_name, core_world_rank, core_last_error
   public :: core_read_env, core_fail, core_abort, core_warn, core_report, core_count_bad, core_itoa

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

   real(dp) :: core_timeout = 300._dp                  !< seconds for every blocking wait
   integer :: core_nan_policy = OBR_NAN_ERROR          !< what a put does with NaN/Inf
   logical :: core_put_direct = .false.                !< put sends from the caller's array and waits (no copy)
   character(len=OBR_NAME_LEN) :: core_name = '?'      !< this component's name
   integer :: core_world_rank = -1                     !< rank in MPI_COMM_WORLD
   character(len=OBR_MSG_LEN) :: core_last_error = ''  !< message of the last error returned through kinfo

contains

   !> Take defaults from OBRIDGE_TIMEOUT and OBRIDGE_NAN_POLICY when set.
   subroutine core_read_env()
      character(len=64) :: val
      integer :: stat, ios
      real(dp) :: t
      call get_environment_variable('OBRIDGE_TIMEOUT', val, status=stat)
      if (stat == 0) then
         read (val, *, iostat=ios) t
         if (ios == 0 .and. t > 0) core_timeout = t
      end if
      call get_environment_variable('OBRIDGE_PUT_MODE', val, status=stat)
      if (stat == 0) core_put_direct = trim(val) == 'direct'
      call get_environment_variable('OBRIDGE_NAN_POLICY', val, status=stat)
      if (stat == 0) then
         select case (trim(val))
         case ('off'); core_nan_policy = OBR_NAN_OFF
         case ('warn'); core_nan_policy = OBR_NAN_WARN
         case ('error'); core_nan_policy = OBR_NAN_ERROR
         end select
      end if
   end subroutine core_read_env

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
      write (error_unit, '(a)') 'oceanbridge ABORT (component '''//trim(core_name)//''', world rank '// &
         trim(core_itoa(core_world_rank))//'): '//trim(msg)
      flush (error_unit)
      flush (output_unit)
      call MPI_Abort(MPI_COMM_WORLD, 1, ierr)
      stop 1
   end subroutine core_abort

   !> Print a warning with component and rank.
   subroutine core_warn(msg)
      character(len=*), intent(in) :: msg         !< the warning
      call core_report('WARNING', msg)
   end subroutine core_warn

   !> Print a labelled message with component and rank on stderr.
   subroutine core_report(label, msg)
      character(len=*), intent(in) :: label       !< 'ERROR', 'WARNING', ...
      character(len=*), intent(in) :: msg         !< the message
      write (error_unit, '(a)') 'oceanbridge '//label//' (component '''//trim(core_name)//''', world rank '// &
         trim(core_itoa(core_world_rank))//'): '//trim(msg)
      flush (error_unit)
   end subroutine core_report

   !> Number of NaN/Inf values in a contiguous buffer.
   pure function core_count_bad(a) result(nbad)
      real(dp), intent(in) :: a(:)                !< values to check
      integer :: nbad
      nbad = count(.not. ieee_is_finite(a))
   end function core_count_bad

   !> An integer as trimmed text.
   pure function core_itoa(i) result(s)
      integer, intent(in) :: i                    !< the integer
      character(len=:), allocatable :: s
      character(len=24) :: buf
      write (buf, '(i0)') i
      s = trim(buf)
   end function core_itoa

end module obr_core
