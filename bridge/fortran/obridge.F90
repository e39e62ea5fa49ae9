!> oceanbridge: couple a Fortran ocean model to Python workers.
!!
!! The public API. The backend is chosen at compile time: MPI by default,
!! OASIS3-MCT with -Dkey_obridge_oasis; the calls are the same for both.
!!
!!   call obr_init('gyre', local_comm)                  ! before anything else; use local_comm, not MPI_COMM_WORLD
!!   call obr_def_partition(nx, ny, i0, j0, ni, nj)     ! this rank's interior box, 0-based offsets
!!   call obr_def_field('sst', OBR_OUT, 1, id_sst)      ! name, direction, levels
!!   call obr_enddef()
!!   call obr_put(id_sst, kt, sst(1:ni,1:nj))           ! in the time loop
!!   call obr_get(id_emu, kt, emu, kinfo)               ! kinfo == OBR_RECVD on success
!!   call obr_finalize()
!!
!! Every call takes an optional kinfo: with it, errors come back as negative
!! codes and obr_last_error() says why; without it, they abort the job with a
!! message naming the field, the rank and the cause.
module obridge
   use obr_core
   use obr_mpi_defs, only: fdef_t
   use obr_backend
   implicit none
   private

   public :: obr_init, obr_def_partition, obr_def_field, obr_enddef, obr_put, obr_get, obr_finalize
   public :: obr_abort, obr_set_timeout, obr_set_nan_policy, obr_set_put_mode, obr_last_error
   public :: OBR_IN, OBR_OUT, OBR_OK, OBR_RECVD, OBR_SENT
   public :: OBR_ERR_DEF, OBR_ERR_TIMEOUT, OBR_ERR_VALUE, OBR_ERR_USAGE, OBR_ERR_MPI, OBR_NAME_LEN

   !> Send a 2-D (ni,nj) or 3-D (ni,nj,nlev) real(8) field.
   interface obr_put
      module procedure put_2d, put_3d
   end interface obr_put

   !> Receive a 2-D (ni,nj) or 3-D (ni,nj,nlev) real(8) field.
   interface obr_get
      module procedure get_2d, get_3d
   end interface obr_get

contains

   !> Join the coupled job as component `name`; returns the component's communicator.
   subroutine obr_init(name, local_comm, kinfo)
      character(len=*), intent(in) :: name       !< component name (1..64 characters, no blanks)
      integer, intent(out) :: local_comm         !< communicator of this component's ranks
      integer, intent(out), optional :: kinfo    !< status: OBR_OK or < 0
      integer :: code
      call core_read_env()
      if (len_trim(name) == 0 .or. len_trim(name) > OBR_NAME_LEN .or. index(trim(name), ' ') > 0) then
         call core_fail(OBR_ERR_USAGE, 'obr_init: component name '''//name//''' must be 1..64 characters '// &
                        'without blanks', kinfo)
         return
      end if
      call backend_init(trim(name), local_comm, code)
      call finish(code, core_last_error, kinfo)
   end subroutine obr_init

   !> Declare this rank's box of the global interior grid (no halos).
   subroutine obr_def_partition(nx_glob, ny_glob, i0, j0, ni, nj, kinfo)
      integer, intent(in) :: nx_glob, ny_glob    !< global interior grid size
      integer, intent(in) :: i0, j0              !< 0-based global offset of this rank's first interior point
      integer, intent(in) :: ni, nj              !< this rank's interior extent
      integer, intent(out), optional :: kinfo    !< status: OBR_OK or < 0
      integer :: code
      if (nx_glob < 1 .or. ny_glob < 1 .or. ni < 1 .or. nj < 1 .or. i0 < 0 .or. j0 < 0 .or. &
          i0 + ni > nx_glob .or. j0 + nj > ny_glob) then
         call core_fail(OBR_ERR_DEF, 'obr_def_partition: box i0='//core_itoa(i0)//' j0='//core_itoa(j0)// &
                        ' ni='//core_itoa(ni)//' nj='//core_itoa(nj)//' does not fit the global grid '// &
                        core_itoa(nx_glob)//'x'//core_itoa(ny_glob), kinfo)
         return
      end if
      call backend_def_partition([nx_glob, ny_glob, i0, j0, ni, nj], code)
      if (present(kinfo)) kinfo = code
   end subroutine obr_def_partition

   !> Declare a field; returns its handle.
   subroutine obr_def_field(name, direction, nlev, id, kinfo)
      character(len=*), intent(in) :: name       !< field name, shared with the peer
      integer, intent(in) :: direction           !< OBR_OUT (this side puts) or OBR_IN (this side gets)
      integer, intent(in) :: nlev                !< number of levels (1 for 2-D fields)
      integer, intent(out) :: id                 !< handle for obr_put/obr_get
      integer, intent(out), optional :: kinfo    !< status: OBR_OK or < 0
      integer :: code
      id = -1
      if (len_trim(name) == 0 .or. len_trim(name) > OBR_NAME_LEN .or. nlev < 1 .or. &
          (direction /= OBR_IN .and. direction /= OBR_OUT)) then
         call core_fail(OBR_ERR_USAGE, 'obr_def_field: field '''//trim(name)//''' needs a name of 1..64 '// &
                        'characters, nlev >= 1 (got '//core_itoa(nlev)//') and direction OBR_IN or OBR_OUT', kinfo)
         return
      end if
      call backend_def_field(fdef_t(name, '', direction, nlev), id, code)
      if (present(kinfo)) kinfo = code
   end subroutine obr_def_field

   !> End definitions: check both sides' definitions and compute the routes.
   subroutine obr_enddef(kinfo)
      integer, intent(out), optional :: kinfo    !< status: OBR_OK or OBR_ERR_DEF
      integer :: code
      character(len=OBR_MSG_LEN) :: msg
      call backend_enddef(code, msg)
      call finish(code, msg, kinfo)
   end subroutine obr_enddef

   subroutine put_2d(id, step, fld, kinfo)
      integer, intent(in) :: id                  !< field handle from obr_def_field
      integer, intent(in) :: step                !< host model step (time-step index)
      real(dp), intent(in) :: fld(:, :)          !< this rank's interior values (ni, nj)
      integer, intent(out), optional :: kinfo    !< status: OBR_SENT or < 0
      integer :: code
      character(len=OBR_MSG_LEN) :: msg
      call backend_put(id, step, code, msg, f2=fld)
      call finish(code, msg, kinfo)
   end subroutine put_2d

   subroutine put_3d(id, step, fld, kinfo)
      integer, intent(in) :: id                  !< field handle from obr_def_field
      integer, intent(in) :: step                !< host model step (time-step index)
      real(dp), intent(in) :: fld(:, :, :)       !< this rank's interior values (ni, nj, nlev)
      integer, intent(out), optional :: kinfo    !< status: OBR_SENT or < 0
      integer :: code
      character(len=OBR_MSG_LEN) :: msg
      call backend_put(id, step, code, msg, f3=fld)
      call finish(code, msg, kinfo)
   end subroutine put_3d

   subroutine get_2d(id, step, fld, kinfo)
      integer, intent(in) :: id                  !< field handle from obr_def_field
      integer, intent(in) :: step                !< host model step (time-step index)
      real(dp), intent(inout) :: fld(:, :)       !< receives this rank's interior values (ni, nj)
      integer, intent(out), optional :: kinfo    !< status: OBR_RECVD or < 0
      integer :: code
      character(len=OBR_MSG_LEN) :: msg
      call backend_get(id, step, code, msg, f2=fld)
      call finish(code, msg, kinfo)
   end subroutine get_2d

   subroutine get_3d(id, step, fld, kinfo)
      integer, intent(in) :: id                  !< field handle from obr_def_field
      integer, intent(in) :: step                !< host model step (time-step index)
      real(dp), intent(inout) :: fld(:, :, :)    !< receives this rank's interior values (ni, nj, nlev)
      integer, intent(out), optional :: kinfo    !< status: OBR_RECVD or < 0
      integer :: code
      character(len=OBR_MSG_LEN) :: msg
      call backend_get(id, step, code, msg, f3=fld)
      call finish(code, msg, kinfo)
   end subroutine get_3d

   !> Complete pending sends and leave the coupled job (MPI_Finalize if obr_init started MPI).
   subroutine obr_finalize(kinfo)
      integer, intent(out), optional :: kinfo    !< status: OBR_OK or < 0
      integer :: code
      character(len=OBR_MSG_LEN) :: msg
      call backend_finalize(code, msg)
      call finish(code, msg, kinfo)
   end subroutine obr_finalize

   !> Stop every component with a message naming this component and rank.
   subroutine obr_abort(msg)
      character(len=*), intent(in) :: msg        !< why the run stops
      call core_abort(msg)
   end subroutine obr_abort

   !> Seconds any blocking wait may last before it fails (default 300, or $OBRIDGE_TIMEOUT).
   subroutine obr_set_timeout(seconds)
      real(dp), intent(in) :: seconds            !< the timeout, > 0
      if (seconds > 0) core_timeout = seconds
   end subroutine obr_set_timeout

   !> What a put does with NaN/Inf: 'error' (default), 'warn' (send anyway) or 'off'.
   subroutine obr_set_nan_policy(policy, kinfo)
      character(len=*), intent(in) :: policy     !< 'error', 'warn' or 'off'
      integer, intent(out), optional :: kinfo    !< status: OBR_OK or OBR_ERR_USAGE
      select case (policy)
      case ('error'); core_nan_policy = OBR_NAN_ERROR
      case ('warn'); core_nan_policy = OBR_NAN_WARN
      case ('off'); core_nan_policy = OBR_NAN_OFF
      case default
         call core_fail(OBR_ERR_USAGE, 'obr_set_nan_policy: '''//policy//''' is not error, warn or off', kinfo)
         return
      end select
      if (present(kinfo)) kinfo = OBR_OK
   end subroutine obr_set_nan_policy

   !> How obr_put sends: 'copy' (default: copy and return at once, the ocean never waits
   !! for the worker) or 'direct' (no copy: send from the array and wait until the
   !! worker has it; falls back to copy where the pieces are not contiguous).
   subroutine obr_set_put_mode(mode, kinfo)
      character(len=*), intent(in) :: mode       !< 'copy' or 'direct'
      integer, intent(out), optional :: kinfo    !< status: OBR_OK or OBR_ERR_USAGE
      select case (mode)
      case ('copy'); core_put_direct = .false.
      case ('direct'); core_put_direct = .true.
      case default
         call core_fail(OBR_ERR_USAGE, 'obr_set_put_mode: '''//mode//''' is not copy or direct', kinfo)
         return
      end select
      if (present(kinfo)) kinfo = OBR_OK
   end subroutine obr_set_put_mode

   !> The message of the last error returned through kinfo.
   function obr_last_error() result(msg)
      character(len=:), allocatable :: msg
      msg = trim(core_last_error)
   end function obr_last_error

   subroutine finish(code, msg, kinfo)
      integer, intent(in) :: code                !< the backend's status
      character(len=*), intent(in) :: msg        !< its message when code < 0
      integer, intent(out), optional :: kinfo    !< the caller's status argument
      if (code < 0) then
         call core_fail(code, msg, kinfo)
      else if (present(kinfo)) then
         kinfo = code
      end if
   end subroutine finish

end module obridge
