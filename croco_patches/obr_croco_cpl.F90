!> @file obr_croco_cpl.F90
!> @brief CROCO's bridge lifecycle (cpp key OBRIDGE): start, definitions, puts/gets with a shared status, stop.
!>
!> This module knows the &namobridge switches and the bridge (module obridge) but no CROCO array:
!> obr_croco.F maps CROCO's state onto the (Lmmpi, Mmmpi, nlev) buffers that travel here.
!> It is free-form and does not include cppdefs.h, so MPI_COMM_WORLD is the real one here.
!>
!> When a bridge call fails on any rank (worker absent, dead or later than rn_obr_timeout), every
!> rank learns it (min-reduction of the status): ln_obr_required stops the whole job with the
!> bridge's message, otherwise CROCO prints a warning and goes on uncoupled (gyre's adapter design).
module obr_croco_cpl
   use mpi
   use obridge
   use obr_croco_nml
   implicit none
   private

   public :: cpl_start, cpl_define, cpl_put, cpl_get, cpl_check, cpl_stop, cpl_finalize, cpl_field
   public :: cpl_clock, cpl_timer

   logical, public :: lk_obr = .false.          !< the bridge is in use and healthy
   integer, public :: nobr = 0                  !< number of fields in cn_obr_send
   integer, public :: kobr_code(jp_obr_max) = 0 !< field code (jp_temp...) of each field
   integer, public :: kobr_lev(jp_obr_max) = 1  !< levels of each field
   integer, parameter, public :: kobr_kind_out = 1, kobr_kind_emu = 2, kobr_kind_ini = 3   !< handle kinds
   integer :: nid(jp_obr_max, 3) = -1           ! bridge handles: out, '_emu', '_init'
   integer :: ncomm = MPI_COMM_NULL             ! CROCO's communicator
   integer :: nrank = 0                         ! rank in it
   real(8) :: rt_loop(2) = 0._8                 ! wall time at the end of the first and of the last timed step
   integer :: kt_loop(2) = -1                   ! their steps
   real(8) :: rt_cpl = 0._8, rt_cpl0 = 0._8     ! wall time in the bridge exchanges after the first step; its start

contains

   !> Read the switches, start MPI through the bridge (ln_obridge) or directly; return CROCO's communicator.
   subroutine cpl_start(kcomm, knp_xi, knp_eta)
      integer, intent(out) :: kcomm             !< communicator of the CROCO ranks (ocean_grid_comm)
      integer, intent(in) :: knp_xi, knp_eta    !< param.h decomposition NP_XI, NP_ETA
      character(len=1024) :: clerr
      character(len=256) :: cl
      integer :: ierr, isize
      call nml_obr_read(clerr)
      if (ln_obridge .and. clerr == '') then
         call obr_init(trim(adjustl(cn_obr_name)), kcomm)        ! aborts with a message on failure
         lk_obr = .true.
      else
         call MPI_Init(ierr)
         kcomm = MPI_COMM_WORLD
      end if
      ncomm = kcomm
      call MPI_Comm_rank(kcomm, nrank, ierr)
      if (clerr /= '') call cpl_stop(trim(clerr))
      call MPI_Comm_size(kcomm, isize, ierr)
      if (isize /= knp_xi * knp_eta) then
         write(cl, '(a,i0,a,i0,a,i0,a,i0,a)') 'param.h decomposition NP_XI x NP_ETA = ', knp_xi, ' x ', knp_eta, &
            & ' = ', knp_xi * knp_eta, ' CROCO ranks, but mpirun started ', isize, ' CROCO ranks (-np)'
         call cpl_stop(trim(cl)//': rebuild with oceanbridge install croco --np-xi/--np-eta, or change -np')
      end if
   end subroutine cpl_start

   !> Declare this rank's box and the fields of cn_obr_send, end the definitions.
   subroutine cpl_define(knx, kny, ki0, kj0, kni, knj, knlev, ld_salt, kit000, pdt)
      integer, intent(in) :: knx, kny          !< global interior rho grid LLm x MMm
      integer, intent(in) :: ki0, kj0          !< 0-based offsets of this rank's first interior point
      integer, intent(in) :: kni, knj          !< this rank's interior extent Lmmpi x Mmmpi
      integer, intent(in) :: knlev             !< vertical levels N
      logical, intent(in) :: ld_salt           !< salinity is a tracer of this configuration
      integer, intent(in) :: kit000            !< first step of the run (ntstart); kit000-1 is the initial state
      real(8), intent(in) :: pdt               !< time step in seconds (OASIS backend: put/get times)
      integer :: jf, info, ienddef
      character(len=80) :: clname
      nobr = 0
      do jf = 1, jp_obr_max
         if (len_trim(cn_obr_send(jf)) == 0) cycle
         nobr = nobr + 1
         kobr_code(nobr) = nml_obr_code(cn_obr_send(jf))
         kobr_lev(nobr) = 1
         if (any(kobr_code(nobr) == [jp_temp, jp_salt, jp_u, jp_v])) kobr_lev(nobr) = knlev
         if (.not. ld_salt .and. any(kobr_code(nobr) == [jp_salt, jp_sss])) call cpl_stop(cp_obr_file// &
            & ': &namobridge: cn_obr_send lists '''//trim(cn_obr_send(jf))//''' but this configuration has '// &
            & 'no salinity (cpp key SALINITY)')
      end do
      if (.not. lk_obr) return
      call obr_set_timeout(rn_obr_timeout)
      info = OBR_OK
      call obr_def_time(kit000, pdt, info)
      if (info >= 0) call obr_def_partition(knx, kny, ki0, kj0, kni, knj, info)
      do jf = 1, nobr
         clname = cp_obr_names(kobr_code(jf))
         if (info >= 0) call obr_def_field(trim(clname), OBR_OUT, kobr_lev(jf), nid(jf, kobr_kind_out), info)
         if (.not. cpl_applies(jf)) cycle
         if (info >= 0 .and. ln_obr_emulator) &
            & call obr_def_field(trim(clname)//'_emu', OBR_IN, kobr_lev(jf), nid(jf, kobr_kind_emu), info)
         if (info >= 0 .and. ln_obr_spinup) &
            & call obr_def_field(trim(clname)//'_init', OBR_IN, kobr_lev(jf), nid(jf, kobr_kind_ini), info)
      end do
      call obr_enddef(ienddef)                  ! every rank takes part, even after a definition error
      if (info >= 0) info = ienddef
      call cpl_check(info, 'end of definitions', -1)
      if (nrank == 0 .and. lk_obr) write(*, '(a,i0,a,i0,a,l1,a,i0,a,l1,a)') ' OBRIDGE: ', nobr, &
         & ' field(s) sent every ', nn_obr_freq, ' steps; emulator ', ln_obr_emulator, ' every ', &
         & nn_obr_emu_freq, ' steps; spin-up ', ln_obr_spinup, '; component '//trim(cn_obr_name)
   end subroutine cpl_define

   !> Field jf of cn_obr_send, for obr_croco.F: its code and levels; .true. when it is received too.
   logical function cpl_field(jf, kcode, knlev)
      integer, intent(in) :: jf                 !< index in cn_obr_send (1..nobr)
      integer, intent(out) :: kcode, knlev      !< field code (jp_temp...) and levels
      kcode = kobr_code(jf)
      knlev = kobr_lev(jf)
      cpl_field = cpl_applies(jf)
   end function cpl_field

   !> Whether emulated/initial values of field jf can be applied (u, v and mask are sent only).
   logical function cpl_applies(jf)
      integer, intent(in) :: jf                 !< index in cn_obr_send
      cpl_applies = .not. any(kobr_code(jf) == [jp_u, jp_v, jp_mask])
   end function cpl_applies

   !> Put field jf of step kt; returns this rank's status (< 0: failed).
   integer function cpl_put(jf, kt, pfld)
      integer, intent(in) :: jf                 !< index in cn_obr_send
      integer, intent(in) :: kt                 !< step: state after kt steps (iic - 1)
      real(8), intent(in) :: pfld(:, :, :)      !< (Lmmpi, Mmmpi, nlev) interior values
      cpl_put = OBR_SENT
      if (lk_obr) call obr_put(nid(jf, kobr_kind_out), kt, pfld, cpl_put)
   end function cpl_put

   !> Get field jf ('_emu' or '_init': kkind) of step kt; returns this rank's status (OBR_RECVD or < 0).
   integer function cpl_get(jf, kkind, kt, pfld)
      integer, intent(in) :: jf                 !< index in cn_obr_send
      integer, intent(in) :: kkind              !< kobr_kind_emu or kobr_kind_ini
      integer, intent(in) :: kt                 !< step
      real(8), intent(inout) :: pfld(:, :, :)   !< (Lmmpi, Mmmpi, nlev) received values
      cpl_get = OBR_ERR_USAGE
      if (lk_obr .and. nid(jf, kkind) > 0) call obr_get(nid(jf, kkind), kt, pfld, cpl_get)
   end function cpl_get

   !> Make every rank agree on the status of a bridge exchange; stop (ln_obr_required) or go on uncoupled.
   subroutine cpl_check(kinfo, cd_what, kt)
      integer, intent(in) :: kinfo              !< this rank's worst status (< 0: failed)
      character(len=*), intent(in) :: cd_what   !< which exchange
      integer, intent(in) :: kt                 !< step (-1: definitions)
      integer :: iv(2), ierr
      character(len=512) :: cl
      iv = [kinfo, -1]
      if (kinfo < 0) iv(2) = nrank
      call MPI_Allreduce(MPI_IN_PLACE, iv(1:1), 1, MPI_INTEGER, MPI_MIN, ncomm, ierr)
      call MPI_Allreduce(MPI_IN_PLACE, iv(2:2), 1, MPI_INTEGER, MPI_MAX, ncomm, ierr)
      if (iv(1) >= 0) return
      if (kinfo < 0) write(*, '(a,i0,a)') ' OBRIDGE croco rank ', nrank, ': '//trim(obr_last_error())
      write(cl, '(a,a,a,i0,a,i0,a)') 'bridge: ', cd_what, ' failed at step ', kt, ' (first failing rank ', &
         & iv(2), '): the worker is absent, dead or slower than rn_obr_timeout'
      if (ln_obr_required) call cpl_stop(trim(cl)//'; stopping because ln_obr_required = .true.')
      if (nrank == 0) write(*, '(a)') ' OBRIDGE WARNING: '//trim(cl)//'; ln_obr_required = .false.: '// &
         & 'continuing UNCOUPLED'
      lk_obr = .false.
   end subroutine cpl_check

   !> Stop every component of the job (CROCO and the worker) with a message.
   subroutine cpl_stop(cd_msg)
      character(len=*), intent(in) :: cd_msg    !< the reason, naming the switch, file or rank
      integer :: ierr
      if (nrank == 0) write(*, '(a)') ' OBRIDGE ERROR: '//trim(cd_msg)
      flush(6)
      if (lk_obr) call obr_abort('croco: '//trim(cd_msg))
      call MPI_Abort(MPI_COMM_WORLD, 1, ierr)
   end subroutine cpl_stop

   !> At the end of every step kt <= ntimes: time the loop (printed by cpl_finalize).
   subroutine cpl_clock(kt)
      integer, intent(in) :: kt                 !< step just done
      if (kt_loop(1) < 0) then
         rt_loop(1) = MPI_Wtime()
         kt_loop(1) = kt
         rt_cpl = 0._8
      else
         rt_loop(2) = MPI_Wtime()
         kt_loop(2) = kt
      end if
   end subroutine cpl_clock

   !> Start (ld_start) or stop the clock of the bridge exchanges.
   subroutine cpl_timer(ld_start)
      logical, intent(in) :: ld_start           !< .true. before the exchanges, .false. after
      if (ld_start) then
         rt_cpl0 = MPI_Wtime()
      else
         rt_cpl = rt_cpl + (MPI_Wtime() - rt_cpl0)
      end if
   end subroutine cpl_timer

   !> Leave the coupled job (obr_finalize, which ends MPI if it started it), then make sure MPI is finalized.
   subroutine cpl_finalize()
      integer :: ierr, info, isteps
      logical :: llfin
      isteps = kt_loop(2) - kt_loop(1)
      if (nrank == 0 .and. kt_loop(2) > kt_loop(1)) write(*, '(a,i0,a,f12.6,a,f12.6,a,f7.2,a)') &
         & ' OBRIDGE timing: ', isteps, ' steps, ', (rt_loop(2) - rt_loop(1)) / isteps, &
         & ' s per step; bridge exchanges ', rt_cpl / isteps, ' s per step (', &
         & 100._8 * rt_cpl / max(rt_loop(2) - rt_loop(1), tiny(1._8)), ' %, rank 0)'
      if (ln_obridge) then
         if (.not. lk_obr) call obr_set_timeout(1._8)   ! the worker is gone: do not wait on its sends
         call obr_finalize(info)
         if (info < 0 .and. nrank == 0) write(*, '(a)') ' OBRIDGE WARNING: obr_finalize: '//trim(obr_last_error())
      end if
      call MPI_Finalized(llfin, ierr)
      if (.not. llfin) call MPI_Finalize(ierr)
   end subroutine cpl_finalize

end module obr_croco_cpl
