!> @file obr_croco_cpl.F90
!> @brief CROCO's bridge lifecycle (cpp key OBRIDGE): CROCO's state handed to the bridge's host layer (module
!>        obr_host, bridge/fortran, copied by the installer), which owns the schedule, the failure policy and the
!>        OASIS initial exchange.
!>
!> This module knows no CROCO array: obr_croco.F stages CROCO's state into zst (Lmmpi, Mmmpi, N, field code)
!> before the puts and applies received values on every time level itself (obr_croco_apply, obr_croco_state.F),
!> the host layer's apply routine. It is free-form and does not include cppdefs.h, so MPI_COMM_WORLD is the
!> real one here. The host layer's stop (cpl_stop) and warning (cpl_warn) print 'OBRIDGE ERROR/WARNING'.
module obr_croco_cpl
   use mpi
   use obr_host
   use obr_croco_nml
   implicit none
   private

   public :: cpl_start, cpl_define, cpl_stop, cpl_finalize, cpl_clock, cpl_timer

   real(8), allocatable, target, public :: zst(:,:,:,:)   !< staged state (Lmmpi, Mmmpi, N, jp_temp..jp_v)
   logical, public :: lobr_ssh = .false.        !< cn_obr_send lists ssh (depths are redone after an apply)
   integer :: nrank = 0                         ! rank in CROCO's communicator
   logical :: ll_joined = .false.               ! the bridge was joined (a stop aborts the coupled job)
   logical :: ll_gaps = .false.                 ! MPI_NOLAND removed land-only subdomains: NNODES < NP_XI*NP_ETA
   real(8) :: rt_loop(2) = 0._8                 ! wall time at the end of the first and of the last timed step
   integer :: kt_loop(2) = -1                   ! their steps
   real(8) :: rt_cpl = 0._8, rt_cpl0 = 0._8     ! wall time in the bridge exchanges after the first step; its start

contains

   !> Read the switches, start MPI through the bridge (ln_obridge) or directly; return CROCO's communicator.
   subroutine cpl_start(kcomm, knp_xi, knp_eta, knnodes)
      integer, intent(out) :: kcomm             !< communicator of the CROCO ranks (ocean_grid_comm)
      integer, intent(in) :: knp_xi, knp_eta    !< param.h decomposition NP_XI, NP_ETA
      integer, intent(in), optional :: knnodes  !< param.h NNODES: fewer than NP_XI*NP_ETA with MPI_NOLAND, which
                                                !! removes the land-only subdomains (default NP_XI*NP_ETA)
      character(len=1024) :: clerr
      character(len=256) :: cl
      integer :: ierr, isize, inodes
      call nml_obr_read(clerr)
      if (clerr /= '') then                     ! every rank reads the same file: all stop here
         call MPI_Init(ierr)
         call MPI_Comm_rank(MPI_COMM_WORLD, nrank, ierr)
         call cpl_stop(trim(clerr))
      end if
      call obr_host_init('croco', '', kcomm, cpl_stop, cpl_warn)   ! aborts with a message on failure
      ll_joined = ln_obridge
      call MPI_Comm_rank(kcomm, nrank, ierr)
      call MPI_Comm_size(kcomm, isize, ierr)
      inodes = knp_xi * knp_eta
      if (present(knnodes)) inodes = knnodes
      ll_gaps = inodes < knp_xi * knp_eta       ! the ranks' boxes leave the removed subdomains to no rank
      if (isize /= inodes .and. .not. ll_gaps) then
         write(cl, '(a,i0,a,i0,a,i0,a,i0,a)') 'param.h decomposition NP_XI x NP_ETA = ', knp_xi, ' x ', knp_eta, &
            & ' = ', knp_xi * knp_eta, ' CROCO ranks, but mpirun started ', isize, ' CROCO ranks (-np)'
         call cpl_stop(trim(cl)//': rebuild with oceanbridge install croco --np-xi/--np-eta, or change -np')
      else if (isize /= inodes) then
         write(cl, '(a,i0,a,i0,a,i0,a,i0,a)') 'param.h NNODES = ', inodes, ' ocean subdomains of NP_XI x NP_ETA = ', &
            & knp_xi, ' x ', knp_eta, ' (MPI_NOLAND), but mpirun started ', isize, ' CROCO ranks (-np)'
         call cpl_stop(trim(cl))
      end if
   end subroutine cpl_start

   !> Declare this rank's box, the mask and the fields CROCO can couple, end the definitions.
   subroutine cpl_define(knx, kny, ki0, kj0, kni, knj, knlev, ld_salt, kit000, pdt, pmask, apply_proc)
      integer, intent(in) :: knx, kny          !< global interior rho grid LLm x MMm
      integer, intent(in) :: ki0, kj0          !< 0-based offsets of this rank's first interior point
      integer, intent(in) :: kni, knj          !< this rank's interior extent Lmmpi x Mmmpi
      integer, intent(in) :: knlev             !< vertical levels N
      logical, intent(in) :: ld_salt           !< salinity is a tracer of this configuration
      integer, intent(in) :: kit000            !< first step of the run (ntstart); kit000-1 is the initial state
      real(8), intent(in) :: pdt               !< time step in seconds (OASIS backend: put/get times)
      real(8), intent(in) :: pmask(:, :)       !< (Lmmpi, Mmmpi) rho mask, 1 sea (1 everywhere without MASKING)
      procedure(obr_host_apply_iface) :: apply_proc   !< CROCO's apply of a received field (every time level)
      real(8), allocatable :: zmsk(:,:,:)
      real(8), pointer :: zp(:,:,:)
      integer :: jf, jc, ilev
      do jf = 1, size(cn_obr_send)
         if (.not. ld_salt .and. any(nml_obr_code(cn_obr_send(jf)) == [jp_salt, jp_sss])) call cpl_stop(cp_obr_file// &
            & ': &namobridge: cn_obr_send lists '''//trim(cn_obr_send(jf))//''' but this configuration has '// &
            & 'no salinity (cpp key SALINITY)')
         lobr_ssh = lobr_ssh .or. nml_obr_code(cn_obr_send(jf)) == jp_ssh
      end do
      if (.not. obr_host_active()) return
      call obr_host_define(knx, kny, ki0, kj0, kni, knj, kit000, pdt, ld_gaps=ll_gaps)
      call obr_host_mask(reshape(pmask, [kni, knj, 1]))
      allocate(zst(kni, knj, knlev, jp_v), zmsk(kni, knj, knlev))
      zst(:,:,:,:) = 0._8
      zmsk(:,:,:) = spread(pmask, 3, knlev)
      do jc = jp_temp, jp_v                     ! u and v (averaged onto rho points) are sent only
         ilev = 1
         if (any(jc == [jp_temp, jp_salt, jp_u, jp_v])) ilev = knlev
         zp => zst(:, :, 1:ilev, jc)
         call obr_host_field([cp_obr_names(jc)], zp, zmsk(:, :, 1:ilev), ld_recv = jc /= jp_u .and. jc /= jp_v, &
            &                apply_proc = apply_proc)
      end do
      call obr_host_enddef()
      if (nrank == 0 .and. obr_host_active()) write(*, '(a,i0,a,i0,a,l1,a,i0,a,l1,a)') ' OBRIDGE: ', &
         & count(len_trim(cn_obr_send) > 0), ' field(s) sent every ', nn_obr_freq, ' steps; emulator ', &
         & ln_obr_emulator, ' every ', nn_obr_emu_freq, ' steps; spin-up ', ln_obr_spinup, '; component '// &
         & trim(cn_obr_name)
   end subroutine cpl_define

   !> Stop every component of the job (CROCO and the worker) with a message; the host layer's stop.
   subroutine cpl_stop(cd_msg)
      character(len=*), intent(in) :: cd_msg    !< the reason, naming the switch, file or rank
      integer :: ierr
      if (nrank == 0) write(*, '(a)') ' OBRIDGE ERROR: '//trim(cd_msg)
      flush(6)
      if (ll_joined) call obr_host_abort(trim(cd_msg))
      call MPI_Abort(MPI_COMM_WORLD, 1, ierr)
   end subroutine cpl_stop

   !> The host layer's warning (rank 0 prints it).
   subroutine cpl_warn(cd_msg)
      character(len=*), intent(in) :: cd_msg    !< the warning
      if (nrank == 0) write(*, '(a)') ' OBRIDGE WARNING: '//trim(cd_msg)
   end subroutine cpl_warn

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

   !> Leave the coupled job (obr_finalize), then finalize MPI.
   subroutine cpl_finalize()
      integer :: isteps
      isteps = kt_loop(2) - kt_loop(1)
      if (nrank == 0 .and. kt_loop(2) > kt_loop(1)) write(*, '(a,i0,a,f12.6,a,f12.6,a,f7.2,a)') &
         & ' OBRIDGE timing: ', isteps, ' steps, ', (rt_loop(2) - rt_loop(1)) / isteps, &
         & ' s per step; bridge exchanges ', rt_cpl / isteps, ' s per step (', &
         & 100._8 * rt_cpl / max(rt_loop(2) - rt_loop(1), tiny(1._8)), ' %, rank 0)'
      call obr_host_finalize()
   end subroutine cpl_finalize

end module obr_croco_cpl
