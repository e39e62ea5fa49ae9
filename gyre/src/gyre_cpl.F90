!> @file gyre_cpl.F90
!> @brief The bridge adapter: gyre's state handed to the bridge's host layer (module obr_host), which owns the
!>        &namobridge switches, the schedule, the failure policy and the OASIS initial exchange.
!>
!> Coupled fields (one level each, interior points only, global grid nn_nx x nn_ny): 'ssh', 'u', 'v', 'temp'
!> (alias 'sst') as cn_obr_send lists them, and the T mask as 'mask'. The schedule is obr_host's: the mask and
!> the state at step nit000-1 (after the spin-up replacement), the state at every step kt with
!> mod(kt, nn_obr_freq) == 0 after its dynamics, then the emulated state '<name>_emu' applied on ocean points.
!> With ln_obridge = .false. nothing here touches the bridge: MPI_Init and MPI_COMM_WORLD are used.
!> A member's own stop (ctl_stop) aborts the whole MPMD job only under ln_obr_required.
module gyre_cpl
   use mpi
#if ! defined GYRE_NO_OBRIDGE
   use obr_host
#endif
   use gyre_par
   use obr_host_nml, only: obr_nml_is_mask
   use gyre_dom, only: tmask
   use gyre_oce, only: xn, xmsk
   use gyre_mpp, only: ni, nj, nimpp, njmpp, nremoved, lbc_lnk, ctl_stop, ctl_warn, abort_hook, lwp
   implicit none
   private

   public :: cpl_init, cpl_define, cpl_spinup, cpl_step, cpl_time, cpl_finalize

contains

   !> Start MPI through the bridge (ln_obridge) or directly; return the model's communicator.
   !> A namelist error stops the whole MPI job here, before the bridge is touched.
   subroutine cpl_init(kcomm, cd_err)
      integer, intent(out) :: kcomm             !< communicator of the gyre ranks
      character(len=*), intent(in) :: cd_err    !< namelist error ('' if none)
#if ! defined GYRE_NO_OBRIDGE
      call obr_host_init('gyre', cd_err, kcomm, gyre_stop, gyre_warn)
      ! a member that stops on its own error takes the whole job down only when the coupling is required:
      ! otherwise the other members go on, and the worker drops this one after rn_obr_timeout
      if (ln_obridge .and. ln_obr_required) abort_hook => obr_host_abort
#else
      integer :: ierr
      call MPI_Init(ierr)
      kcomm = MPI_COMM_WORLD
      if (len_trim(cd_err) > 0) then             ! no bridge: stop the job every rank saying why
         write(*, '(a)') ' gyre: ERROR: '//trim(cd_err)//'; stopping the MPI job'
         write(0, '(a)') 'gyre: ERROR: '//trim(cd_err)
         flush(6) ; flush(0)
         call MPI_Abort(MPI_COMM_WORLD, 1, ierr)
      end if
#endif
   end subroutine cpl_init

   !> After the decomposition and the initial state: register the fields with the host layer.
   subroutine cpl_define()
#if defined GYRE_NO_OBRIDGE
      if (ln_obridge) call ctl_stop('&namobridge: ln_obridge = .true. but gyre was built without the bridge library ' &
         &                          //'(build/lib/libobridge.a was missing at build time: run make fortran)')
#else
      integer :: jf
      real(wp), pointer :: zp(:,:,:)
      if (.not. obr_host_active()) return
      ! ln_landdom: the ranks leave the removed (land-only) tiles to no rank; the worker gets 0 there
      call obr_host_define(nn_nx, nn_ny, nimpp, njmpp, ni, nj, nit000, ld_gaps = nremoved > 0)
      call obr_host_mask(reshape(tmask(1:ni, 1:nj), [ni, nj, 1]))
      do jf = 1, jpfld
         zp => xn(1:ni, 1:nj, jf:jf)
         if (jf == jp_tem) then
            call obr_host_field([character(len=4) :: cp_fld(jf), 'sst'], zp, xmsk(1:ni, 1:nj, jf:jf))
         else
            call obr_host_field([cp_fld(jf)], zp, xmsk(1:ni, 1:nj, jf:jf))
         end if
      end do
      ! stp_ctl already stops on NaN/Inf before every put when nn_ctl = 1: skip the bridge's second scan
      call obr_host_enddef(ld_nancheck = nn_ctl /= 1)
      if (lwp .and. obr_host_active()) write(*, '(a,a,a,i0,a,i0,a,l1,a,l1,a,i0,a,l1)') ' cpl_define: component ', &
         & trim(cn_obr_name), ': ', count(len_trim(cn_obr_send) > 0) - count(obr_nml_is_mask(cn_obr_send)), &
         & ' field(s) sent every ', nn_obr_freq, ' steps; mask ', any(obr_nml_is_mask(cn_obr_send)), &
         & '; emulator ', ln_obr_emulator, ' every ', nn_obr_emu_freq, ' steps; spin-up ', ln_obr_spinup
#endif
   end subroutine cpl_define

   !> With ln_obr_spinup, replace the initial state by '<name>_init' received at step nit000-1.
   subroutine cpl_spinup()
#if ! defined GYRE_NO_OBRIDGE
      logical :: lldone
      call obr_host_spinup(lldone)
      if (lldone) then
         call lbc_lnk(xn)
         if (lwp) write(*, '(a,i0)') ' cpl_spinup: initial state replaced by the received one at step ', nit000 - 1
      end if
#endif
   end subroutine cpl_spinup

   !> The coupling of step kt (nit000-1: the initial state): puts, then the emulated state; .true. when applied.
   logical function cpl_step(kt)
      integer, intent(in) :: kt                 !< time step index of the state
      cpl_step = .false.
#if ! defined GYRE_NO_OBRIDGE
      call obr_host_step(kt, cpl_step)
      if (cpl_step) call lbc_lnk(xn)
#endif
   end function cpl_step

   !> Wall time spent in the coupling calls so far (s).
   real(wp) function cpl_time()
      cpl_time = 0._wp
#if ! defined GYRE_NO_OBRIDGE
      cpl_time = obr_host_time
#endif
   end function cpl_time

   !> Leave the coupled job or finalize MPI.
   subroutine cpl_finalize()
#if ! defined GYRE_NO_OBRIDGE
      abort_hook => null()
      call obr_host_finalize()
#else
      integer :: ierr
      call MPI_Finalize(ierr)
#endif
   end subroutine cpl_finalize

#if ! defined GYRE_NO_OBRIDGE
   !> The host layer's collective stop.
   subroutine gyre_stop(cd_msg)
      character(len=*), intent(in) :: cd_msg    !< the reason
      call ctl_stop(cd_msg)
   end subroutine gyre_stop

   !> The host layer's warning.
   subroutine gyre_warn(cd_msg)
      character(len=*), intent(in) :: cd_msg    !< the warning
      call ctl_warn(cd_msg)
   end subroutine gyre_warn
#endif

end module gyre_cpl
