!> @file obr_host.F90
!> @brief The host layer: the coupling protocol of an ocean model, written once for every host.
!>
!> A host reads &namobridge with obr_host_nml, then:
!>   call obr_host_init(...)        ! MPI through the bridge (ln_obridge) or alone; the model's communicator
!>   call obr_host_define(...)      ! after the decomposition: the partition of this rank
!>   call obr_host_field(...)       ! once per state field it knows (only those of cn_obr_send are coupled);
!>                                  ! optionally sent only, or applied by the host's own routine
!>   call obr_host_mask(...)        ! the mask sent once when cn_obr_send lists 'mask'
!>   call obr_host_enddef(...)      ! end of definitions
!>   call obr_host_spinup(...)      ! ln_obr_spinup: '<name>_init' replaces the initial state
!>   call obr_host_step(kt, ...)    ! at nit000-1 and after every step: the schedule below (a host that applies
!>                                  ! the emulated state of kt at the start of step kt+1 calls its 'put' and 'get')
!>   call obr_host_finalize()
!> Schedule (wire names, interior points only):
!>  - OUT 'mask'        once at step nit000-1, before the state (when cn_obr_send lists 'mask');
!>  - OUT '<name>'      at every kt in [nit000-1, nitend] with mod(kt, nn_obr_freq) == 0;
!>  - IN  '<name>_emu'  with ln_obr_emulator at every kt in [nit000, nitend] with mod(kt, nn_obr_emu_freq) == 0,
!>                      after the put of kt, applied ('replace' or 'increment') on the mask's ocean points; when
!>                      the backend needs every field at the initial time (OASIS), also got once at nit000-1,
!>                      after the puts, and discarded;
!>  - IN  '<name>_init' with ln_obr_spinup once at nit000-1, before the first put; replaces the state.
!> A field registered as sent only has neither '_emu' nor '_init'; one registered with the host's apply routine
!> is changed by that routine (all its time levels, say), not in the registered array.
!> Failure policy: the status of every bridge call is agreed over the model's ranks (MINLOC reduction);
!> ln_obr_required stops the model with the bridge's message through the host's stop routine, otherwise the
!> host's warn routine says so and the model goes on uncoupled; a put refused for NaN/Inf always stops.
module obr_host
   use mpi
   use obridge
   use obr_host_nml
   use, intrinsic :: iso_fortran_env, only: real64
   implicit none
   private

   public :: obr_host_init, obr_host_init_oasis, obr_host_define, obr_host_field, obr_host_mask, obr_host_enddef
   public :: obr_host_spinup, obr_host_step, obr_host_finalize, obr_host_abort, obr_host_active
   public :: obr_host_msg_iface, obr_host_apply_iface

   integer, parameter :: dp = real64             ! as obr_core (NEMO compiles with -fdefault-real-8)
   real(dp), public :: obr_host_time = 0._dp     !< wall time spent in obr_host_step (s)

   abstract interface
      !> A host's stop or warning routine: prints the message (its first rank) and stops or returns.
      subroutine obr_host_msg_iface(cd_msg)
         character(len=*), intent(in) :: cd_msg   !< the message
      end subroutine obr_host_msg_iface
      !> A host's own apply of one received field, for a state the registered array does not hold (time levels).
      subroutine obr_host_apply_iface(cd_name, pbuf, ld_inc)
         import :: dp
         character(len=*), intent(in) :: cd_name   !< the field's name as cn_obr_send lists it
         real(dp), intent(in) :: pbuf(:,:,:)       !< the received values on the tile's interior (ni, nj, nlev)
         logical, intent(in) :: ld_inc             !< .true.: add them (increment), .false.: replace
      end subroutine obr_host_apply_iface
   end interface

   type :: t_fld                                 ! one coupled field
      character(len=16) :: name = ''             ! wire name
      character(len=16) :: alias(4) = ''         ! names cn_obr_send may give it
      real(dp), pointer :: data(:,:,:) => null() ! the host's values (ni, nj, nlev)
      real(dp), allocatable :: msk(:,:,:)        ! its mask (ni, nj, nlev): < 0.5 keeps the host's value
      real(dp), allocatable :: buf(:,:,:)        ! received values
      integer :: id_out = -1, id_emu = -1, id_ini = -1
      logical :: recv = .true.                   ! '<name>_emu' / '<name>_init' are received (else sent only)
      procedure(obr_host_apply_iface), pointer, nopass :: hook => null()   ! the host's apply (else where(msk))
   end type t_fld

   logical :: lk_cpl = .false.                   ! the bridge is in use and healthy
   logical :: ljoined = .false.                  ! this model joined the coupled job
   character(len=32) :: cmodel = 'model'         ! model name for messages
   integer :: ncomm = MPI_COMM_NULL, nrank = 0   ! model communicator, this rank in it
   integer :: nit000 = 1                         ! first step (nit000-1 is the initial state)
   integer :: ninfo = OBR_OK                     ! worst status of the definitions
   integer :: nfld = 0                           ! coupled fields
   type(t_fld) :: reg(32)                        ! fields the host registered
   integer :: nreg = 0
   type(t_fld) :: fld(jp_obr_maxfld)             ! the coupled ones, in the order of cn_obr_send
   real(dp), allocatable :: zmask(:,:,:)         ! 'mask' to send
   integer :: id_mask = -1                       ! bridge handle of 'mask' (-1: not sent)
   procedure(obr_host_msg_iface), pointer :: host_stop => null(), host_warn => null()

contains

   !> Start MPI through the bridge (ln_obridge) or alone; stop the whole job first on a namelist error.
   subroutine obr_host_init(cd_model, cd_err, kcomm, stop_proc, warn_proc)
      character(len=*), intent(in) :: cd_model  !< model name for messages ('gyre')
      character(len=*), intent(in) :: cd_err    !< namelist error found before MPI was up ('' if none)
      integer, intent(out) :: kcomm             !< communicator of the model's ranks
      procedure(obr_host_msg_iface) :: stop_proc   !< the host's collective stop (does not return)
      procedure(obr_host_msg_iface) :: warn_proc   !< the host's warning
      integer :: ierr
      logical :: llinit
      cmodel = cd_model
      host_stop => stop_proc
      host_warn => warn_proc
      if (len_trim(cd_err) > 0) call stop_before_init(cd_err)
      if (ln_obridge) then
         call obr_init(trim(cn_obr_name), kcomm)   ! aborts with a message on failure
         lk_cpl = .true.
         ljoined = .true.
      else
         call MPI_Initialized(llinit, ierr)
         if (.not. llinit) call MPI_Init(ierr)
         kcomm = MPI_COMM_WORLD
      end if
      ncomm = kcomm
   end subroutine obr_host_init

   !> OASIS backend, for a host that owns its OASIS component (NEMO key_oasis3): join it (instead of obr_host_init).
   subroutine obr_host_init_oasis(cd_model, cd_comp, kcomp_id, kcomm, stop_proc, warn_proc)
      character(len=*), intent(in) :: cd_model  !< model name for messages ('nemo')
      character(len=*), intent(in) :: cd_comp   !< the host's OASIS component name
      integer, intent(in) :: kcomp_id           !< the host's OASIS component id
      integer, intent(in) :: kcomm              !< communicator of the model's ranks
      procedure(obr_host_msg_iface) :: stop_proc   !< the host's collective stop (does not return)
      procedure(obr_host_msg_iface) :: warn_proc   !< the host's warning
      cmodel = cd_model
      host_stop => stop_proc
      host_warn => warn_proc
      call obr_init_from_oasis(cd_comp, kcomp_id, kcomm)
      lk_cpl = .true.
      ljoined = .true.
      ncomm = kcomm
   end subroutine obr_host_init_oasis

   !> Stop the whole MPI job on an input error met before MPI was up, every rank saying why.
   !> Whether this member is coupled cannot be trusted here (ln_obridge may be unread), and in an MPMD job the
   !> other programs wait in a collective over MPI_COMM_WORLD that this one will never join: only MPI_Abort
   !> ends them. No rank knows its place in its own program yet, so each prints.
   subroutine stop_before_init(cd_err)
      character(len=*), intent(in) :: cd_err    !< the input error (file, block, variable)
      integer :: ierr, irank
      logical :: llinit
      character(len=1024) :: clcwd
      call MPI_Initialized(llinit, ierr)
      if (.not. llinit) call MPI_Init(ierr)
      call MPI_Comm_rank(MPI_COMM_WORLD, irank, ierr)
      call getcwd(clcwd)                        ! the member's folder: which member's namelist is wrong
      write(*, '(a,i0,a)') ' '//trim(cmodel)//': ERROR (world rank ', irank, ', in '//trim(clcwd)//'): '// &
         &                 trim(cd_err)//'; stopping the MPI job'
      write(0, '(a,i0,a)') trim(cmodel)//': ERROR (world rank ', irank, ', in '//trim(clcwd)//'): '//trim(cd_err)
      flush(6) ; flush(0)
      call MPI_Abort(MPI_COMM_WORLD, 1, ierr)
   end subroutine stop_before_init

   !> .true. while the bridge is in use and healthy.
   logical function obr_host_active()
      obr_host_active = lk_cpl
   end function obr_host_active

   !> After the decomposition: declare this rank's tile of the global grid.
   subroutine obr_host_define(knx, kny, ki0, kj0, kni, knj, kit000, pdt, ld_gaps)
      integer, intent(in) :: knx, kny           !< global grid size (interior points)
      integer, intent(in) :: ki0, kj0           !< 0-based global offset of the tile's first interior point
      integer, intent(in) :: kni, knj           !< interior size of the tile
      integer, intent(in) :: kit000             !< first time step (nit000-1 is the initial state)
      real(dp), intent(in), optional :: pdt     !< time step (s), for the OASIS backend's clock (obr_def_time)
      logical, intent(in), optional :: ld_gaps  !< .true. on every rank when the host removed land-only tiles
                                                !! (its ranks cover only part of the grid; the rest is land)
      integer :: ierr
      nit000 = kit000
      if (.not. lk_cpl) return
      call MPI_Comm_rank(ncomm, nrank, ierr)
      call obr_set_timeout(rn_obr_timeout)
      ninfo = OBR_OK
      if (present(pdt)) call obr_def_time(kit000, pdt, ninfo)
      if (ninfo >= 0) call obr_def_partition(knx, kny, ki0, kj0, kni, knj, ninfo, ld_gaps)
   end subroutine obr_host_define

   !> Register a state field the host can couple; it is coupled when cn_obr_send lists its name or an alias.
   subroutine obr_host_field(cd_names, pdata, pmsk, ld_recv, apply_proc)
      character(len=*), intent(in) :: cd_names(:)            !< the name and its aliases, as cn_obr_send may list them
      real(dp), pointer, intent(in) :: pdata(:,:,:)          !< the values on the tile's interior (ni, nj, nlev)
      real(dp), intent(in) :: pmsk(:,:,:)                    !< its mask (ni, nj, nlev): 1 ocean, 0 land
      logical, intent(in), optional :: ld_recv               !< .false.: sent only, no '<name>_emu'/'<name>_init'
      procedure(obr_host_apply_iface), optional :: apply_proc   !< the host applies received values (pdata is not changed)
      if (.not. lk_cpl) return
      nreg = nreg + 1
      if (nreg > size(reg)) then
         ninfo = min(ninfo, OBR_ERR_USAGE)
         call host_warn('obr_host_field: more than 32 fields registered')
         nreg = size(reg) ; return
      end if
      reg(nreg)%alias = ''
      reg(nreg)%alias(1:min(size(cd_names), size(reg(nreg)%alias))) = cd_names(1:min(size(cd_names), size(reg(nreg)%alias)))
      reg(nreg)%data => pdata
      reg(nreg)%msk = pmsk
      reg(nreg)%recv = .true.
      if (present(ld_recv)) reg(nreg)%recv = ld_recv
      reg(nreg)%hook => null()
      if (present(apply_proc)) reg(nreg)%hook => apply_proc
   end subroutine obr_host_field

   !> Register the mask, sent once at step nit000-1 when cn_obr_send lists 'mask'.
   subroutine obr_host_mask(pmsk)
      real(dp), intent(in) :: pmsk(:,:,:)       !< the mask on the tile's interior (ni, nj, nlev): 1 ocean, 0 land
      if (.not. (lk_cpl .and. any(obr_nml_is_mask(cn_obr_send)))) return
      zmask = pmsk
   end subroutine obr_host_mask

   !> Define the fields of cn_obr_send (in its order, the mask first), end the definitions (every rank takes part,
   !> even after a definition error) and agree on the outcome.
   subroutine obr_host_enddef(ld_nancheck)
      logical, intent(in), optional :: ld_nancheck   !< .false.: the host checks NaN/Inf itself, skip the bridge's scan
      integer :: ienddef, jf, jr, ilev
      if (.not. lk_cpl) return
      if (present(ld_nancheck)) then
         if (.not. ld_nancheck) call obr_set_nan_policy('off')
      end if
      if (ninfo >= 0 .and. allocated(zmask)) call obr_def_field('mask', OBR_OUT, size(zmask, 3), id_mask, ninfo)
      do jf = 1, jp_obr_maxfld
         if (len_trim(cn_obr_send(jf)) == 0) cycle
         do jr = 1, nreg
            if (.not. any(obr_lower(adjustl(reg(jr)%alias)) == obr_lower(adjustl(cn_obr_send(jf))) &
                          .and. len_trim(reg(jr)%alias) > 0)) cycle
            nfld = nfld + 1
            fld(nfld) = reg(jr)
            fld(nfld)%name = cn_obr_send(jf)
            ilev = size(fld(nfld)%data, 3)
            allocate(fld(nfld)%buf(size(fld(nfld)%data, 1), size(fld(nfld)%data, 2), ilev))
            if (ninfo >= 0) call obr_def_field(trim(fld(nfld)%name), OBR_OUT, ilev, fld(nfld)%id_out, ninfo)
            if (ninfo >= 0 .and. ln_obr_emulator .and. fld(nfld)%recv) &
               & call obr_def_field(trim(fld(nfld)%name)//'_emu', OBR_IN, ilev, fld(nfld)%id_emu, ninfo)
            if (ninfo >= 0 .and. ln_obr_spinup .and. fld(nfld)%recv) &
               & call obr_def_field(trim(fld(nfld)%name)//'_init', OBR_IN, ilev, fld(nfld)%id_ini, ninfo)
            exit
         end do
      end do
      call obr_enddef(ienddef)
      if (ninfo >= 0) ninfo = ienddef
      call check(ninfo, 'end of definitions', nit000 - 1)
   end subroutine obr_host_enddef

   !> With ln_obr_spinup, replace the initial state by '<name>_init' received at step nit000-1.
   subroutine obr_host_spinup(ld_done)
      logical, intent(out) :: ld_done           !< .true. when the state was replaced (refresh the halos)
      ld_done = .false.
      if (.not. (lk_cpl .and. ln_obr_spinup)) return
      if (receive(3, nit000 - 1, 'spin-up get')) then
         call apply(.false.)
         ld_done = .true.
      end if
   end subroutine obr_host_spinup

   !> The schedule of step kt: the mask (nit000-1), the puts, then the emulator's get (applied) or, at nit000-1
   !> under OASIS, its initial exchange (discarded). A host may run the two parts at different points of its step.
   subroutine obr_host_step(kt, ld_changed, cd_part)
      integer, intent(in) :: kt                 !< time step of the state (nit000-1: the initial state)
      logical, intent(out) :: ld_changed        !< .true. when a received state was applied (refresh the halos)
      character(len=*), intent(in), optional :: cd_part   !< 'put': the mask and the puts of kt only; 'get': the
                                                          !! emulator's get of kt only (OASIS's at nit000-1); default both
      integer :: jf, info, iworst
      real(dp) :: zt0
      logical :: ll, llput, llget
      ld_changed = .false.
      if (.not. lk_cpl) return
      llput = .true. ; llget = .true.
      if (present(cd_part)) then
         llput = cd_part /= 'get'
         llget = cd_part /= 'put'
      end if
      if (llput .and. kt == nit000 - 1 .and. id_mask >= 0) then   ! the static mask travels once, before the state
         call obr_put(id_mask, kt, zmask, info)
         call check(min(info, OBR_OK), 'put of the mask', kt)
         if (.not. lk_cpl) return
      end if
      zt0 = MPI_Wtime()
      if (llput .and. mod(kt, nn_obr_freq) == 0) then
         iworst = OBR_OK
         do jf = 1, nfld
            call obr_put(fld(jf)%id_out, kt, fld(jf)%data, info)
            if (info < 0) then
               iworst = info
               exit
            end if
         end do
         call check(iworst, 'put', kt)
      end if
      if (llget .and. kt == nit000 - 1) then
         if (lk_cpl .and. ln_obr_emulator .and. obr_needs_initial_exchange()) &
            & ll = receive(2, kt, 'initial emulator get (discarded)')
      else if (llget .and. lk_cpl .and. ln_obr_emulator .and. mod(kt, nn_obr_emu_freq) == 0) then
         if (receive(2, kt, 'emulator get')) then
            call apply(cn_obr_emu_mode == 'increment')
            ld_changed = .true.
         end if
      end if
      obr_host_time = obr_host_time + (MPI_Wtime() - zt0)
   end subroutine obr_host_step

   !> Get every coupled field of a kind (2: '_emu', 3: '_init') into its buffer; .true. when all ranks got all.
   logical function receive(kkind, kt, cd_what)
      integer, intent(in) :: kkind              !< 2: '<name>_emu', 3: '<name>_init'
      integer, intent(in) :: kt                 !< step
      character(len=*), intent(in) :: cd_what   !< for messages
      integer :: jf, info, iworst, iid
      iworst = OBR_RECVD
      do jf = 1, nfld
         if (.not. fld(jf)%recv) cycle
         iid = fld(jf)%id_emu ; if (kkind == 3) iid = fld(jf)%id_ini
         call obr_get(iid, kt, fld(jf)%buf, info)
         if (info /= OBR_RECVD) then
            iworst = min(info, -1)
            exit
         end if
      end do
      call check(iworst, cd_what, kt)
      receive = lk_cpl
   end function receive

   !> Apply the received buffers on the ocean points of each field (or through the host's apply): replace, or add.
   subroutine apply(ld_inc)
      logical, intent(in) :: ld_inc             !< .true.: increment, .false.: replace
      integer :: jf
      do jf = 1, nfld
         if (.not. fld(jf)%recv) cycle
         if (associated(fld(jf)%hook)) then
            call fld(jf)%hook(trim(fld(jf)%name), fld(jf)%buf, ld_inc)
         else if (ld_inc) then
            where (fld(jf)%msk >= 0.5_dp) fld(jf)%data = fld(jf)%data + fld(jf)%buf
         else
            where (fld(jf)%msk >= 0.5_dp) fld(jf)%data = fld(jf)%buf
         end if
      end do
   end subroutine apply

   !> Make every rank agree on the status of a bridge call; stop (ln_obr_required) or go on uncoupled.
   subroutine check(kinfo, cd_what, kt)
      integer, intent(in) :: kinfo              !< this rank's status (< 0: failed)
      character(len=*), intent(in) :: cd_what   !< which call
      integer, intent(in) :: kt                 !< step
      integer :: iv(2), ierr
      character(len=512) :: cl
      ! one collective: the worst status and the lowest rank that has it (MINLOC)
      iv = [min(kinfo, 0), nrank]
      call MPI_Allreduce(MPI_IN_PLACE, iv, 1, MPI_2INTEGER, MPI_MINLOC, ncomm, ierr)
      if (iv(1) >= 0) return
      if (kinfo < 0) write(*, '(a,i0,a)') ' '//trim(cmodel)//' rank ', nrank, ': bridge: '//trim(obr_last_error())
      flush(6)
      write(cl, '(a,a,a,i0,a,i0,a)') 'bridge: ', cd_what, ' failed at step ', kt, ' (first failing rank ', iv(2), &
         & '): '//trim(failure_cause(iv(1), index(cd_what, 'put') > 0))
      lk_cpl = .false.                          ! no second bridge call from the host's stop
      if (iv(1) == OBR_ERR_VALUE .and. index(cd_what, 'put') > 0) then
         ! a state with NaN/Inf is nothing to go on from, coupled or not
         call host_stop(trim(cl)//'; stopping this member ('//trim(cn_obr_name)//')')
      else if (ln_obr_required) then
         call host_stop(trim(cl)//'; stopping because ln_obr_required = .true.')
      else
         call host_warn(trim(cl)//'; ln_obr_required = .false.: continuing UNCOUPLED')
      end if
   end subroutine check

   !> Why a bridge call failed, from its status (the bridge's own message, printed before, has the details).
   function failure_cause(kinfo, ld_put) result(cl)
      integer, intent(in) :: kinfo              !< the worst status over the ranks (< 0)
      logical, intent(in) :: ld_put             !< the call was a put (else a get or a definition)
      character(len=256) :: cl
      select case (kinfo)
      case (OBR_ERR_VALUE)
         cl = 'the worker sent NaN/Inf, which the bridge refuses to apply'
         if (ld_put) cl = 'this member''s state holds NaN/Inf, which the bridge refuses to send'
      case (OBR_ERR_TIMEOUT)
         cl = 'the worker is absent, dead or slower than rn_obr_timeout'
      case (OBR_ERR_DEF)
         cl = 'the model and the worker define the fields differently (see the bridge message above)'
      case default
         cl = 'see the bridge message above'
      end select
   end function failure_cause

   !> Abort the whole coupled job (model and worker) through the bridge; for the host's stop under ln_obr_required.
   subroutine obr_host_abort(cd_msg)
      character(len=*), intent(in) :: cd_msg    !< the reason
      call obr_abort(trim(cmodel)//': '//trim(cd_msg))
   end subroutine obr_host_abort

   !> Leave the coupled job (obr_finalize, then MPI_Finalize if still needed) or finalize MPI.
   subroutine obr_host_finalize(ld_mpi)
      logical, intent(in), optional :: ld_mpi   !< .false.: the host finalizes MPI itself (default .true.)
      integer :: ierr, info
      logical :: llfin, llmpi
      llmpi = .true. ; if (present(ld_mpi)) llmpi = ld_mpi
      if (.not. llmpi) then
         if (.not. ljoined) return
         if (.not. lk_cpl) call obr_set_timeout(1._dp)
         call obr_finalize(info)
         if (info < 0) call host_warn('bridge: obr_finalize: '//trim(obr_last_error()))
         lk_cpl = .false.
         ljoined = .false.
         return
      end if
      if (ln_obridge) then
         if (.not. lk_cpl) call obr_set_timeout(1._dp)   ! the worker is gone: do not wait on its sends
         call obr_finalize(info)
         if (info < 0) call host_warn('bridge: obr_finalize: '//trim(obr_last_error()))
         call MPI_Finalized(llfin, ierr)
         if (.not. llfin) call MPI_Finalize(ierr)
         return
      end if
      call MPI_Finalize(ierr)
   end subroutine obr_host_finalize

end module obr_host
