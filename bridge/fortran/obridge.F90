!> oceanbridge: couple a Fortran ocean model to Python workers.
!!
!! The public API. The backend is chosen at compile time: MPI by default,
!! OASIS3-MCT with -Dkey_obridge_oasis; the calls are the same for both.
!!
!!   call obr_init('gyre', local_comm)                  ! before anything else; use local_comm, not MPI_COMM_WORLD
!!   call obr_def_time(nit000, rdt)                     ! first step index, step length in seconds (for OASIS)
!!   call obr_def_partition(nx, ny, i0, j0, ni, nj)     ! this rank's interior box, 0-based offsets
!!                                                      ! (ld_gaps=.true.: land-only subdomains removed)
!!   call obr_def_field('sst', OBR_OUT, 1, id_sst)      ! name, direction, levels
!!   call obr_enddef()
!!   call obr_put(id_sst, kt, sst(1:ni,1:nj))           ! in the time loop
!!   call obr_get(id_emu, kt, emu, kinfo)               ! kinfo == OBR_RECVD on success
!!   call obr_finalize()
!!
!! Every call takes an optional kinfo: with it, errors come back as negative
!! codes and obr_last_error() says why; without it, they abort the job with a
!! message naming the field, the rank and the cause.
!!
!! OASIS3-MCT backend (-Dkey_obridge_oasis), what differs:
!!  - Time: oasis_put/oasis_get take seconds. A put/get at step kt carries the
!!    state after step kt, at OASIS time t = (kt - nit000 + 1)*dt: the initial
!!    state (kt = nit000 - 1) is t = 0, the last one (kt = nitend) t = steps*dt,
!!    so the namcouple's $RUNTIME is (steps + 1)*dt (oceanbridge preprod writes
!!    it). Exchanging when MOD(kt, freq) == 0 (the &namobridge convention) meets
!!    OASIS's period freq*dt when freq divides nit000 - 1. Call
!!    obr_def_time(nit000, dt) before obr_enddef, or let 'oceanbridge launch' set
!!    $OBRIDGE_NIT000 / $OBRIDGE_DT (the MPI backend ignores both). t is a 32-bit
!!    integer: about 68 simulated years per run segment.
!!  - Names on the wire: UPPER(component_field), e.g. 'GYRE_1_SST' (as
!!    bridge/transport/naming.py::oasis_name and the namcouple of
!!    'oceanbridge preprod'). A field missing from the namcouple stops obr_enddef
!!    with a message naming the field and its OASIS name.
!!  - put/get may be called at any step; OASIS acts only at the namcouple's
!!    coupling times. kinfo is OBR_SENT / OBR_RECVD when it did, OBR_OK when
!!    nothing was due (a get then leaves the array untouched). Every field must
!!    be exchanged at EVERY coupling time from t = 0 on (OASIS aborts with
!!    'potential deadlock' otherwise): a put/get that finds one skipped stops
!!    with a message naming the field and the time.
!!  - The '<name>_emu' fields a host gets (worker -> ocean) have coupling
!!    times from t = 0 too, but a host first asks for an emulated state at a
!!    step kt >= nit000. So at the initial step (kt = nit000 - 1, after its
!!    puts) a host gets them once more and DISCARDS them, and the worker puts
!!    there (bridge/worker/runtime.py puts the state it has just received).
!!    obr_needs_initial_exchange() says whether the backend needs this:
!!    .true. on OASIS, .false. on MPI (which exchanges only what is asked).
!!  - No receive timeout: OASIS waits inside MPI (see obr_oasis.F90);
!!    obr_set_timeout applies to the MPI backend only.
!!
!! Host that initialised OASIS itself (NEMO with key_oasis3 calls
!! cpl_init('oceanx') -> oasis_init_comp, and later oasis_enddef in
!! sbc_cpl_init). Call order:
!!   1. host: oasis_init_comp(ncomp_id, 'oceanx', ierr); oasis_get_localcomm(comm, ierr)
!!   2. call obr_init_from_oasis('oceanx', ncomp_id, comm)   ! reuse the component
!!   3. call obr_def_time(nit000, rn_Dt); obr_def_partition(...); obr_def_field(...)
!!   4. call obr_enddef()        ! declares partition + variables, does NOT call oasis_enddef
!!   5. host: its own oasis_def_var calls, then oasis_enddef(ierr)
!!   6. time loop: obr_put / obr_get (after the host's oasis_enddef)
!!   7. call obr_finalize()      ! does NOT call oasis_terminate; the host does
!! So in NEMO, steps 2-4 go between cpl_init and the oasis_enddef of
!! sbc_cpl_init. The namcouple must hold the entries of both the host and
!! oceanbridge. With the MPI backend obr_init_from_oasis is an error.
module obridge
   use obr_core
   use obr_mpi_defs, only: fdef_t
   use obr_backend
   implicit none
   private

   public :: obr_init, obr_init_from_oasis, obr_def_time, obr_def_partition, obr_def_field, obr_enddef
   public :: obr_put, obr_get, obr_finalize
   public :: obr_needs_initial_exchange
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
      if (.not. ready_to_join('obr_init', name, kinfo)) return
      call backend_init(trim(name), local_comm, code)
      call finish(code, core_last_error, kinfo)
   end subroutine obr_init

   !> Join the coupled job through an OASIS component the host already initialised (OASIS backend only).
   subroutine obr_init_from_oasis(name, comp_id, local_comm, kinfo)
      character(len=*), intent(in) :: name       !< the component name the host gave oasis_init_comp
      integer, intent(in) :: comp_id             !< the component id oasis_init_comp returned to the host
      integer, intent(in) :: local_comm          !< the host's communicator from oasis_get_localcomm (checked)
      integer, intent(out), optional :: kinfo    !< status: OBR_OK or < 0
      integer :: code
      if (.not. ready_to_join('obr_init_from_oasis', name, kinfo)) return
#if defined key_obridge_oasis
      call backend_init_host(trim(name), comp_id, local_comm, code)
      call finish(code, core_last_error, kinfo)
#else
      code = comp_id + local_comm   ! unused in the MPI backend
      call core_fail(OBR_ERR_USAGE, 'obr_init_from_oasis(''' // trim(name) // '''): this oceanbridge was built '// &
                     'with the MPI backend; rebuild it with -Dkey_obridge_oasis (make OBRIDGE_BACKEND=oasis '// &
                     'OASIS_DIR=...) to couple through OASIS3-MCT', kinfo)
#endif
   end subroutine obr_init_from_oasis

   !> Give the host's time axis: the state after step kt is at OASIS time (kt - nit000 + 1)*dt seconds
   !! (no-op for the MPI backend).
   subroutine obr_def_time(nit000, dt, kinfo)
      integer, intent(in) :: nit000              !< index of the host's first time step
      real(dp), intent(in) :: dt                 !< length of one host time step in seconds, > 0
      integer, intent(out), optional :: kinfo    !< status: OBR_OK or OBR_ERR_USAGE
      if (.not. dt > 0) then
         call core_fail(OBR_ERR_USAGE, 'obr_def_time: time step dt must be > 0 seconds', kinfo)
         return
      end if
      core_nit000 = nit000
      core_dt = dt
      if (present(kinfo)) kinfo = OBR_OK
   end subroutine obr_def_time

   !> .true. when the backend needs every field exchanged at every coupling time from the initial step
   !! nit000 - 1 (OASIS time 0) on, so hosts also get (and discard) '<name>_emu' there; .false. on MPI.
   logical function obr_needs_initial_exchange()
#if defined key_obridge_oasis
      obr_needs_initial_exchange = .true.
#else
      obr_needs_initial_exchange = .false.
#endif
   end function obr_needs_initial_exchange

   !> Declare this rank's box of the global interior grid (no halos).
   subroutine obr_def_partition(nx_glob, ny_glob, i0, j0, ni, nj, kinfo, ld_gaps)
      integer, intent(in) :: nx_glob, ny_glob    !< global interior grid size
      integer, intent(in) :: i0, j0              !< 0-based global offset of this rank's first interior point
      integer, intent(in) :: ni, nj              !< this rank's interior extent
      integer, intent(out), optional :: kinfo    !< status: OBR_OK or < 0
      logical, intent(in), optional :: ld_gaps   !< .true. on every rank: the ranks cover only part of the grid
                                                 !! (land-only subdomains removed); no rank owns the rest, which
                                                 !! is land: a peer receives 0 there, and what it puts is dropped
      integer :: code
      if (nx_glob < 1 .or. ny_glob < 1 .or. ni < 1 .or. nj < 1 .or. i0 < 0 .or. j0 < 0 .or. &
          i0 + ni > nx_glob .or. j0 + nj > ny_glob) then
         call core_fail(OBR_ERR_DEF, 'obr_def_partition: box i0='//core_itoa(i0)//' j0='//core_itoa(j0)// &
                        ' ni='//core_itoa(ni)//' nj='//core_itoa(nj)//' does not fit the global grid '// &
                        core_itoa(nx_glob)//'x'//core_itoa(ny_glob), kinfo)
         return
      end if
      call backend_def_partition([nx_glob, ny_glob, i0, j0, ni, nj], present_and_true(ld_gaps), code)
      call finish(code, core_last_error, kinfo)
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
      call finish(code, core_last_error, kinfo)
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
      integer, intent(out), optional :: kinfo    !< status: OBR_SENT, or OBR_ERR_VALUE (NaN/Inf under policy 'error'), or < 0
      integer :: code
      character(len=OBR_MSG_LEN) :: msg
      call backend_put(id, step, code, msg, f2=fld)
      call finish(code, msg, kinfo)
   end subroutine put_2d

   subroutine put_3d(id, step, fld, kinfo)
      integer, intent(in) :: id                  !< field handle from obr_def_field
      integer, intent(in) :: step                !< host model step (time-step index)
      real(dp), intent(in) :: fld(:, :, :)       !< this rank's interior values (ni, nj, nlev)
      integer, intent(out), optional :: kinfo    !< status: OBR_SENT, or OBR_ERR_VALUE (NaN/Inf under policy 'error'), or < 0
      integer :: code
      character(len=OBR_MSG_LEN) :: msg
      call backend_put(id, step, code, msg, f3=fld)
      call finish(code, msg, kinfo)
   end subroutine put_3d

   subroutine get_2d(id, step, fld, kinfo)
      integer, intent(in) :: id                  !< field handle from obr_def_field
      integer, intent(in) :: step                !< host model step (time-step index)
      real(dp), intent(inout) :: fld(:, :)       !< receives this rank's interior values (ni, nj)
      integer, intent(out), optional :: kinfo    !< status: OBR_RECVD, or OBR_ERR_VALUE (the sender rejected its put: fld undefined), or < 0
      integer :: code
      character(len=OBR_MSG_LEN) :: msg
      call backend_get(id, step, code, msg, f2=fld)
      call finish(code, msg, kinfo)
   end subroutine get_2d

   subroutine get_3d(id, step, fld, kinfo)
      integer, intent(in) :: id                  !< field handle from obr_def_field
      integer, intent(in) :: step                !< host model step (time-step index)
      real(dp), intent(inout) :: fld(:, :, :)    !< receives this rank's interior values (ni, nj, nlev)
      integer, intent(out), optional :: kinfo    !< status: OBR_RECVD, or OBR_ERR_VALUE (the sender rejected its put: fld undefined), or < 0
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

   !> Seconds any blocking wait may last before it fails (default $OBRIDGE_TIMEOUT, [run] timeout in a deploy
   !! config; unset, core_timeout's initial value, obr_core.F90).
   subroutine obr_set_timeout(seconds)
      real(dp), intent(in) :: seconds            !< the timeout, > 0
      if (seconds > 0) core_timeout = seconds
   end subroutine obr_set_timeout

   !> What a put does with NaN/Inf: 'error' (default: the put returns OBR_ERR_VALUE; on MPI the message still
   !! completes, flagged rejected, and the peer's get fails naming field, step, rank and count; on OASIS
   !! nothing is sent), 'warn' (send anyway) or 'off' (no scan).
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

   !> Before joining: the $OBRIDGE_* settings read (a malformed one is named) and the component name
   !! checked; false, with the error reported through kinfo or the abort path, when either fails.
   logical function ready_to_join(what, name, kinfo)
      character(len=*), intent(in) :: what       !< the calling routine, for the message
      character(len=*), intent(in) :: name       !< the component name asked for
      integer, intent(out), optional :: kinfo    !< the caller's status argument
      integer :: code
      ready_to_join = .false.
      call core_read_env(code)
      if (code < 0) then   ! a malformed OBRIDGE_* variable, named in the message
         call finish(code, core_last_error, kinfo)
         return
      end if
      if (.not. core_valid_name(name)) then
         call core_fail(OBR_ERR_USAGE, what//': component name '''//name//''' must be 1..64 characters '// &
                        'without blanks', kinfo)
         return
      end if
      ready_to_join = .true.
   end function ready_to_join

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

   !> Whether an optional logical argument was given as .true.
   pure logical function present_and_true(flag)
      logical, intent(in), optional :: flag      !< the argument
      present_and_true = .false.
      if (present(flag)) present_and_true = flag
   end function present_and_true

end module obridge
