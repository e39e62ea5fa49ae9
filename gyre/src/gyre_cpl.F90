!> @file gyre_cpl.F90
!> @brief The bridge adapter: &namobridge switches mapped onto the oceanbridge Fortran API (module obridge).
!>
!> Protocol (component cn_obr_name, default 'gyre'; field names on the wire, one level each, interior points
!> only, global grid nn_nx x nn_ny):
!>  - OUT 'mask'         when cn_obr_send lists 'mask': the T mask (1 ocean, 0 land), put once, at step nit000-1,
!>                        before the state;
!>  - OUT '<name>'       for every name of cn_obr_send ('ssh','u','v','temp' or its alias 'sst'), put at every
!>                        step kt in [nit000-1, nitend] with mod(kt, nn_obr_freq) == 0, after the dynamics of kt
!>                        (kt = nit000-1 is the initial state, after the spin-up replacement);
!>  - IN  '<name>_emu'   with ln_obr_emulator: get at every kt in [nit000, nitend] with mod(kt, nn_obr_emu_freq)==0,
!>                        after the put of kt; applied ('replace' or 'increment') on ocean points, halos refreshed;
!>                        when the backend needs every field at the initial time (OASIS: obr_needs_initial_exchange),
!>                        also got once at kt = nit000-1, after the puts of that step, and discarded;
!>  - IN  '<name>_init'  with ln_obr_spinup: get once at step nit000-1, before the first put; replaces the state.
!> With ln_obridge = .false. nothing here touches the bridge: MPI_Init and MPI_COMM_WORLD are used.
!> When a bridge call fails (worker absent, dead or late beyond rn_obr_timeout) on any rank, every rank learns it
!> (min-reduction of the status): ln_obr_required stops the run with the bridge's message, otherwise the model
!> prints a warning and goes on uncoupled; a put refused for NaN/Inf stops this member in both cases. A member's
!> own stop (ctl_stop) aborts the whole MPMD job only under ln_obr_required. The same adapter design serves the
!> NEMO and CROCO patches.
module gyre_cpl
   use mpi
#if ! defined GYRE_NO_OBRIDGE
   use obridge
#endif
   use gyre_par
   use gyre_nml, only: nml_field_index, nml_is_mask
   use gyre_dom, only: tmask
   use gyre_mpp, only: ni, nj, nimpp, njmpp, nrank, mpi_comm_oce, lbc_lnk, ctl_stop, ctl_warn, abort_hook, lwp
   implicit none
   private

   public :: cpl_init, cpl_define, cpl_spinup, cpl_send, cpl_emulate, cpl_finalize

   logical, public :: lk_cpl = .false.          !< the bridge is in use and healthy
   real(wp), public :: rcpl_time = 0._wp        !< wall time spent in the coupling calls of the time loop (s)
   integer :: nsend = 0                         ! number of coupled fields
   integer :: ifld(jp_maxsend) = 0              ! state index (jp_ssh...) of each coupled field
   character(len=16) :: cname(jp_maxsend) = ''  ! wire name of each coupled field
   integer :: id_out(jp_maxsend) = -1, id_emu(jp_maxsend) = -1, id_ini(jp_maxsend) = -1   ! bridge handles
   integer :: id_mask = -1                      ! bridge handle of 'mask' (-1: not sent)
   real(wp), allocatable :: zbuf(:,:,:)         ! received fields (ni, nj, nsend)

contains

   !> Start MPI through the bridge (ln_obridge) or directly; return the model's communicator.
   !> A namelist error stops the whole MPI job here, before the bridge is touched (see stop_before_init).
   subroutine cpl_init(kcomm, cd_err)
      integer, intent(out) :: kcomm             !< communicator of the gyre ranks
      character(len=*), intent(in) :: cd_err    !< namelist error ('' if none)
      integer :: ierr
      if (len_trim(cd_err) > 0) call stop_before_init(cd_err)
#if ! defined GYRE_NO_OBRIDGE
      if (ln_obridge) then
         call obr_init(trim(cn_obr_name), kcomm) ! aborts with a message on failure
         lk_cpl = .true.
         ! a member that stops on its own error takes the whole job down only when the coupling is required:
         ! otherwise the other members go on, and the worker drops this one after rn_obr_timeout
         if (ln_obr_required) abort_hook => cpl_abort
         return
      end if
#endif
      call MPI_Init(ierr)
      kcomm = MPI_COMM_WORLD
   end subroutine cpl_init

   !> Stop the whole MPI job on an input error met before MPI was up, every rank saying why.
   !> Whether this member is coupled cannot be trusted here (the error may sit in a block read before
   !> &namobridge, leaving ln_obridge unread), and in an MPMD job the other programs wait in a collective
   !> over MPI_COMM_WORLD that this one will never join: only MPI_Abort ends them. No rank here knows its
   !> place in its own program yet, so each prints (a member of N ranks prints its error N times).
   subroutine stop_before_init(cd_err)
      character(len=*), intent(in) :: cd_err    !< the input error (file, block, variable)
      integer :: ierr, irank
      character(len=1024) :: clcwd
      call MPI_Init(ierr)
      call MPI_Comm_rank(MPI_COMM_WORLD, irank, ierr)
      call getcwd(clcwd)                        ! the member's folder: which member's namelist is wrong
      write(*, '(a,i0,a)') ' gyre: ERROR (world rank ', irank, ', in '//trim(clcwd)//'): '//trim(cd_err)// &
         &                 '; stopping the MPI job'
      write(0, '(a,i0,a)') 'gyre: ERROR (world rank ', irank, ', in '//trim(clcwd)//'): '//trim(cd_err)
      flush(6) ; flush(0)
      call MPI_Abort(MPI_COMM_WORLD, 1, ierr)
   end subroutine stop_before_init

   !> After the decomposition: declare the partition and the fields, end the definitions.
   subroutine cpl_define()
      integer :: jf, info(1), ienddef
#if defined GYRE_NO_OBRIDGE
      if (ln_obridge) call ctl_stop('&namobridge: ln_obridge = .true. but gyre was built without the bridge library ' &
         &                          //'(build/lib/libobridge.a was missing at build time: run make fortran)')
      return
#else
      if (.not. lk_cpl) return
      nsend = 0
      do jf = 1, jp_maxsend
         if (len_trim(cn_obr_send(jf)) == 0 .or. nml_is_mask(cn_obr_send(jf))) cycle
         nsend = nsend + 1
         cname(nsend) = cn_obr_send(jf)
         ifld(nsend) = nml_field_index(cn_obr_send(jf))
      end do
      allocate(zbuf(ni, nj, max(nsend, 1)))
      call obr_set_timeout(real(rn_obr_timeout, 8))
      ! stp_ctl already stops on NaN/Inf before every put when nn_ctl = 1: skip the bridge's second scan
      if (nn_ctl == 1) call obr_set_nan_policy('off')
      info = OBR_OK
      call obr_def_partition(nn_nx, nn_ny, nimpp, njmpp, ni, nj, info(1))
      if (info(1) >= 0 .and. any(nml_is_mask(cn_obr_send))) call obr_def_field('mask', OBR_OUT, 1, id_mask, info(1))
      do jf = 1, nsend
         if (info(1) >= 0) call obr_def_field(trim(cname(jf)), OBR_OUT, 1, id_out(jf), info(1))
         if (info(1) >= 0 .and. ln_obr_emulator) call obr_def_field(trim(cname(jf))//'_emu', OBR_IN, 1, id_emu(jf), info(1))
         if (info(1) >= 0 .and. ln_obr_spinup) call obr_def_field(trim(cname(jf))//'_init', OBR_IN, 1, id_ini(jf), info(1))
      end do
      call obr_enddef(ienddef)                   ! every rank takes part, even after a definition error
      if (info(1) >= 0) info(1) = ienddef
      call cpl_check(info(1), 'end of definitions', nit000 - 1)
      if (lwp .and. lk_cpl) write(*, '(a,a,a,i0,a,i0,a,l1,a,l1,a,i0,a,l1)') ' cpl_define: component ', &
         & trim(cn_obr_name), ': ', nsend, ' field(s) sent every ', nn_obr_freq, ' steps; mask ', id_mask >= 0, &
         & '; emulator ', ln_obr_emulator, ' every ', nn_obr_emu_freq, ' steps; spin-up ', ln_obr_spinup
#endif
   end subroutine cpl_define

   !> With ln_obr_spinup, replace the initial state by '<name>_init' received at step nit000-1.
   subroutine cpl_spinup(px, pmsk)
      real(wp), intent(inout) :: px(1-nn_hls:, 1-nn_hls:, :)   !< state, halos refreshed on return
      real(wp), intent(in)    :: pmsk(1-nn_hls:, 1-nn_hls:, :) !< mask of each field
      if (.not. (lk_cpl .and. ln_obr_spinup)) return
      if (receive(id_ini, nit000 - 1, 'spin-up get')) then
         call apply(px, pmsk, .false.)
         if (lwp) write(*, '(a,i0)') ' cpl_spinup: initial state replaced by the received one at step ', nit000 - 1
      end if
   end subroutine cpl_spinup

   !> Put the cn_obr_send fields of step kt when kt is a multiple of nn_obr_freq (and the mask at nit000-1).
   subroutine cpl_send(kt, px)
      integer, intent(in) :: kt                 !< time step index of the state
      real(wp), intent(in) :: px(1-nn_hls:, 1-nn_hls:, :)   !< state
#if ! defined GYRE_NO_OBRIDGE
      integer :: jf, info, iworst
      real(wp) :: zt0
      if (.not. lk_cpl) return
      if (kt == nit000 - 1 .and. id_mask >= 0) then   ! the static mask travels once, before the first state
         call obr_put(id_mask, kt, tmask(1:ni, 1:nj), info)
         call cpl_check(min(info, OBR_OK), 'put of the mask', kt)
         if (.not. lk_cpl) return
      end if
      if (mod(kt, nn_obr_freq) == 0) then
         zt0 = MPI_Wtime()
         iworst = OBR_OK
         do jf = 1, nsend
            call obr_put(id_out(jf), kt, px(1:ni, 1:nj, ifld(jf)), info)
            if (info < 0) then
               iworst = info
               exit
            end if
         end do
         call cpl_check(iworst, 'put', kt)
         rcpl_time = rcpl_time + (MPI_Wtime() - zt0)
      end if
      if (kt == nit000 - 1) call discard_initial_emu(kt)
#endif
   end subroutine cpl_send

   !> OASIS couples '<name>_emu' from t = 0 on: get it at the initial step too, and leave the state as it is.
   subroutine discard_initial_emu(kt)
      integer, intent(in) :: kt                 !< the initial step, nit000-1
#if ! defined GYRE_NO_OBRIDGE
      logical :: ll
      if (.not. (lk_cpl .and. ln_obr_emulator .and. obr_needs_initial_exchange())) return
      ll = receive(id_emu, kt, 'initial emulator get (discarded)')
#endif
   end subroutine discard_initial_emu

   !> With ln_obr_emulator, get '<name>_emu' at step kt (multiple of nn_obr_emu_freq) and apply it.
   logical function cpl_emulate(kt, px, pmsk)
      integer, intent(in) :: kt                 !< time step index of the state
      real(wp), intent(inout) :: px(1-nn_hls:, 1-nn_hls:, :)   !< state, halos refreshed when applied
      real(wp), intent(in)    :: pmsk(1-nn_hls:, 1-nn_hls:, :) !< mask of each field
      real(wp) :: zt0
      cpl_emulate = .false.
      if (.not. (lk_cpl .and. ln_obr_emulator)) return
      if (mod(kt, nn_obr_emu_freq) /= 0) return
      zt0 = MPI_Wtime()
      if (receive(id_emu, kt, 'emulator get')) then
         call apply(px, pmsk, cn_obr_emu_mode == 'increment')
         cpl_emulate = .true.
      end if
      rcpl_time = rcpl_time + (MPI_Wtime() - zt0)
   end function cpl_emulate

   !> Get every coupled field of a kind into zbuf; .true. when all ranks received all of them.
   logical function receive(kid, kt, cd_what)
      integer, intent(in) :: kid(:)             !< bridge handles (id_emu or id_ini)
      integer, intent(in) :: kt                 !< step
      character(len=*), intent(in) :: cd_what   !< for messages
#if ! defined GYRE_NO_OBRIDGE
      integer :: jf, info, iworst
      iworst = OBR_RECVD
      do jf = 1, nsend
         call obr_get(kid(jf), kt, zbuf(:,:,jf), info)
         if (info /= OBR_RECVD) then
            iworst = min(info, -1)
            exit
         end if
      end do
      call cpl_check(iworst, cd_what, kt)
      receive = lk_cpl
#else
      receive = .false.
#endif
   end function receive

   !> Apply zbuf on the ocean points of each field: replace, or add (increment); then refresh the halos.
   subroutine apply(px, pmsk, ld_inc)
      real(wp), intent(inout) :: px(1-nn_hls:, 1-nn_hls:, :)   !< state
      real(wp), intent(in)    :: pmsk(1-nn_hls:, 1-nn_hls:, :) !< mask of each field
      logical, intent(in) :: ld_inc             !< .true.: increment, .false.: replace
      integer :: jf, ji, jj, ik
      do jf = 1, nsend
         ik = ifld(jf)
         do jj = 1, nj
            do ji = 1, ni
               if (pmsk(ji,jj,ik) < 0.5_wp) cycle       ! land keeps its value
               if (ld_inc) then
                  px(ji,jj,ik) = px(ji,jj,ik) + zbuf(ji,jj,jf)
               else
                  px(ji,jj,ik) = zbuf(ji,jj,jf)
               end if
            end do
         end do
      end do
      call lbc_lnk(px)
   end subroutine apply

   !> Make every rank agree on the status of a bridge call; stop (ln_obr_required) or go on uncoupled.
   subroutine cpl_check(kinfo, cd_what, kt)
      integer, intent(in) :: kinfo              !< this rank's status (< 0: failed)
      character(len=*), intent(in) :: cd_what   !< which call
      integer, intent(in) :: kt                 !< step
      integer :: iv(2), ierr
      character(len=lc) :: cl
#if ! defined GYRE_NO_OBRIDGE
      ! one collective: the worst status and the lowest rank that has it (MINLOC)
      iv = [min(kinfo, 0), nrank]
      call MPI_Allreduce(MPI_IN_PLACE, iv, 1, MPI_2INTEGER, MPI_MINLOC, mpi_comm_oce, ierr)
      if (iv(1) >= 0) return
      if (kinfo < 0) write(*, '(a,i0,a)') ' gyre rank ', nrank, ': bridge: '//trim(obr_last_error())
      flush(6)
      write(cl, '(a,a,a,i0,a,i0,a)') 'bridge: ', cd_what, ' failed at step ', kt, ' (first failing rank ', iv(2), &
         & '): '//trim(failure_cause(iv(1), index(cd_what, 'put') > 0))
      if (iv(1) == OBR_ERR_VALUE .and. index(cd_what, 'put') > 0) then
         lk_cpl = .false.                        ! a state with NaN/Inf is nothing to go on from, coupled or not
         call ctl_stop(trim(cl)//'; stopping this member ('//trim(cn_obr_name)//')')
      else if (ln_obr_required) then
         lk_cpl = .false.                        ! no second bridge call from ctl_stop's abort
         abort_hook => cpl_abort
         call ctl_stop(trim(cl)//'; stopping because ln_obr_required = .true.')
      else
         call ctl_warn(trim(cl)//'; ln_obr_required = .false.: continuing UNCOUPLED')
         lk_cpl = .false.
      end if
#endif
   end subroutine cpl_check

   !> Why a bridge call failed, from its status (the bridge's own message, printed above, has the details).
   function failure_cause(kinfo, ld_put) result(cl)
      integer, intent(in) :: kinfo              !< the worst status over the ranks (< 0)
      logical, intent(in) :: ld_put             !< the call was a put (else a get or a definition)
      character(len=lc) :: cl
#if ! defined GYRE_NO_OBRIDGE
      select case (kinfo)
      case (OBR_ERR_VALUE)
         cl = 'the worker sent NaN/Inf, which the bridge refuses to apply'
         if (ld_put) cl = 'this member''s state holds NaN/Inf, which the bridge refuses to send'
      case (OBR_ERR_TIMEOUT)
         cl = 'the worker is absent, dead or slower than rn_obr_timeout'
      case default
         cl = 'see the bridge message above'
      end select
#else
      cl = ''
#endif
   end function failure_cause

   !> Abort the whole coupled job (model and worker) through the bridge.
   subroutine cpl_abort(cd_msg)
      character(len=*), intent(in) :: cd_msg    !< the reason
#if ! defined GYRE_NO_OBRIDGE
      call obr_abort('gyre: '//trim(cd_msg))
#endif
   end subroutine cpl_abort

   !> Leave the coupled job (obr_finalize, which calls MPI_Finalize) or finalize MPI.
   subroutine cpl_finalize()
      integer :: ierr, info
      logical :: llfin
#if ! defined GYRE_NO_OBRIDGE
      if (ln_obridge) then
         abort_hook => null()
         if (.not. lk_cpl) call obr_set_timeout(1._8)   ! the worker is gone: do not wait on its sends
         call obr_finalize(info)
         if (info < 0) call ctl_warn('bridge: obr_finalize: '//trim(obr_last_error()))
         call MPI_Finalized(llfin, ierr)
         if (.not. llfin) call MPI_Finalize(ierr)
         return
      end if
#endif
      call MPI_Finalize(ierr)
   end subroutine cpl_finalize

end module gyre_cpl
